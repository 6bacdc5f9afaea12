#!/usr/bin/python3
"""Mint JWT test vectors for balanced's JWT verifier.

Usage: /usr/bin/python3 tests/auth/mint_tokens.py OUT_DIR

Writes OUT_DIR/jwks.json, OUT_DIR/hs256.secret and OUT_DIR/cases.json.

Everything here is signed with PyJWT / pyca-cryptography on purpose: the
vectors must come from an implementation independent of the one under test,
otherwise a shared bug would make both sides agree.  Run it with Debian's
/usr/bin/python3 (python3-jwt, python3-cryptography); the pyenv python3 on
PATH lacks those modules.

Keys are fresh on every run; the set of cases, their names and their expected
outcomes are fixed.

Verifier contract the expectations encode:
  * issuer "https://issuer.test", audience "balanced", leeway 30 s, clock =
    the "now" recorded in cases.json;
  * a JWK without "alg" accepts RS256 only;
  * HS256 is verified against hs256.secret only (file bytes as the HMAC key)
    and its kid is otherwise ignored -- except that an HS256 header naming a
    JWKS key is alg_mismatch (the RSA-public-key-as-HMAC-secret attack);
  * no "crit" extension is understood, so any "crit" header is rejected;
  * tokens longer than 8192 bytes are too_large (8192 itself is fine).

As far as the defect allows, each rejection case is otherwise fully valid,
so the expected reason does not depend on the order of checks.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import sys
import time

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

ISSUER = "https://issuer.test"
AUDIENCE = "balanced"
LEEWAY_S = 30
MAX_TOKEN_BYTES = 8192
SCOPE = "balances:read transactions:write"
ACCOUNTS = ["acct-1", "acct-2"]

# PyJWT's own algorithm objects do the signing, so hand-built headers and
# payloads (missing alg, non-object payloads, crit, ...) still get signatures
# from the independent implementation.
PYJWT_ALGS = jwt.algorithms.get_default_algorithms()


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def uint_b64u(value: int, length: int = 0) -> str:
    # RFC 7518 6.3.1: n and e use the minimal big-endian encoding; EC
    # coordinates (6.2.1.2) must be the full field size, hence `length`.
    length = length or max(1, (value.bit_length() + 7) // 8)
    return b64u(value.to_bytes(length, "big"))


def compact_json(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8")


# --------------------------------------------------------------------------
# Keys
# --------------------------------------------------------------------------

def gen_rsa():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_keys():
    return {
        "rs1": gen_rsa(),
        "ps1": gen_rsa(),
        "es1": ec.generate_private_key(ec.SECP256R1()),
        "ed1": ed25519.Ed25519PrivateKey.generate(),
        "rs-noalg": gen_rsa(),
        # Never published: used to sign tokens that claim kid "rs1".
        "rogue-rsa": gen_rsa(),
    }


def public_jwk(kid: str, key, alg):
    jwk = {"kid": kid, "use": "sig"}
    if alg is not None:
        jwk["alg"] = alg
    if isinstance(key, rsa.RSAPrivateKey):
        nums = key.public_key().public_numbers()
        jwk.update(kty="RSA", n=uint_b64u(nums.n), e=uint_b64u(nums.e))
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        nums = key.public_key().public_numbers()
        jwk.update(kty="EC", crv="P-256",
                   x=uint_b64u(nums.x, 32), y=uint_b64u(nums.y, 32))
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        jwk.update(kty="OKP", crv="Ed25519", x=b64u(raw))
    else:
        raise TypeError(kid)
    # Conventional member order (kty first) only to make the file readable.
    return {"kty": jwk.pop("kty"), **jwk}


# --------------------------------------------------------------------------
# Token construction
# --------------------------------------------------------------------------

class Minter:
    def __init__(self, keys, hs_secret: bytes, now: int):
        self.keys = keys
        self.hs_secret = hs_secret
        self.now = now

    def claims(self, subject: str, **overrides):
        """A claim set that passes every check; overrides inject one defect.

        An override value of None deletes the claim.
        """
        c = {
            "iss": ISSUER,
            "sub": subject,
            "aud": AUDIENCE,
            "iat": self.now,
            "exp": self.now + 600,
            "scope": SCOPE,
            "accounts": list(ACCOUNTS),
        }
        for name, value in overrides.items():
            if value is None:
                c.pop(name, None)
            else:
                c[name] = value
        return c

    def sign_bytes(self, alg: str, key_name: str, signing_input: bytes) -> bytes:
        algo = PYJWT_ALGS[alg]
        key = self.hs_secret if key_name == "hs" else self.keys[key_name]
        return algo.sign(signing_input, algo.prepare_key(key))

    def token(self, header, payload, key_name=None, sign_alg=None) -> str:
        """Serialise header/payload and sign with key_name.

        header/payload may be dicts (JSON-encoded compactly) or raw bytes, so
        non-object and non-JSON parts can be signed too.  sign_alg defaults to
        the header's alg; it is separate so a header can lie about (or omit)
        its alg while the signature is still made with a real one.
        """
        hdr = header if isinstance(header, bytes) else compact_json(header)
        pay = payload if isinstance(payload, bytes) else compact_json(payload)
        signing_input = (b64u(hdr) + "." + b64u(pay)).encode("ascii")
        alg = sign_alg or (header.get("alg") if isinstance(header, dict) else None)
        sig = b"" if key_name is None else self.sign_bytes(alg, key_name, signing_input)
        return signing_input.decode("ascii") + "." + b64u(sig)

    def std(self, alg: str, key_name: str, kid, subject: str, extra_header=None,
            **claim_overrides) -> str:
        header = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        header.update(extra_header or {})
        return self.token(header, self.claims(subject, **claim_overrides), key_name)


def with_sig(token: str, sig: bytes) -> str:
    head, payload, _ = token.split(".")
    return f"{head}.{payload}.{b64u(sig)}"


def flip_sig_byte(token: str) -> str:
    # Alter a decoded byte in the middle: flipping a base64 character could
    # land in the final character's padding bits and decode to the same bytes.
    sig = bytearray(b64u_decode(token.split(".")[2]))
    sig[len(sig) // 2] ^= 0x01
    return with_sig(token, bytes(sig))


def sized_token(minter: Minter, total_len: int) -> str:
    """A valid RS256/rs1 token exactly total_len bytes long.

    Unpadded base64url can never be 4k+1 characters long, so padding the
    payload alone cannot reach every length; a second pad in the header
    covers the gaps.  The RS256 signature length is fixed for a 2048-bit key,
    so lengths are searched on unsigned tokens and only the hit is signed.
    """
    sig_len = len(b64u(bytes(2048 // 8)))
    for head_pad in range(4):
        header = {"alg": "RS256", "typ": "JWT", "kid": "rs1"}
        if head_pad:
            header["pad"] = "h" * head_pad
        for pad in range(total_len):
            claims = minter.claims("sub-sized", pad="x" * pad)
            unsigned_len = len(minter.token(header, claims)) + sig_len
            if unsigned_len == total_len:
                tok = minter.token(header, claims, "rs1")
                assert len(tok) == total_len
                return tok
            if unsigned_len > total_len:
                break
    raise RuntimeError(f"cannot hit token length {total_len}")


# --------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------

def build_cases(m: Minter, keys):
    now = m.now
    cases = []

    def ok(name, token, sub):
        cases.append({"name": name, "token": token, "expect": "ok",
                      "sub": sub, "scope": SCOPE, "accounts": list(ACCOUNTS)})

    def bad(name, token, reason):
        cases.append({"name": name, "token": token, "expect": reason})

    # ---- ok ---------------------------------------------------------------
    for name, alg, key_name, kid in [
        ("ok-rs256-rs1", "RS256", "rs1", "rs1"),
        ("ok-ps256-ps1", "PS256", "ps1", "ps1"),
        ("ok-es256-es1", "ES256", "es1", "es1"),
        ("ok-eddsa-ed1", "EdDSA", "ed1", "ed1"),
        # A JWK without "alg" is usable for RS256 (and only RS256).
        ("ok-rs256-rs-noalg", "RS256", "rs-noalg", "rs-noalg"),
        ("ok-hs256-no-kid", "HS256", "hs", None),
        # HS256 ignores kid as long as it names no JWKS key.
        ("ok-hs256-unrelated-kid-ignored", "HS256", "hs", "hmac-local"),
    ]:
        sub = "sub-" + name
        ok(name, m.std(alg, key_name, kid, sub), sub)

    sub = "sub-ok-typ-at-jwt"
    ok("ok-rs256-typ-at-jwt",
       m.std("RS256", "rs1", "rs1", sub, extra_header={"typ": "at+jwt"}), sub)
    sub = "sub-ok-aud-array"
    ok("ok-aud-array-containing-balanced",
       m.std("ES256", "es1", "es1", sub, aud=["other-service", AUDIENCE, "x"]), sub)
    sub = "sub-ok-exp-in-leeway"
    ok("ok-exp-29s-ago-within-leeway",
       m.std("RS256", "rs1", "rs1", sub, exp=now - (LEEWAY_S - 1)), sub)
    sub = "sub-ok-nbf-in-leeway"
    ok("ok-nbf-29s-ahead-within-leeway",
       m.std("RS256", "rs1", "rs1", sub, nbf=now + (LEEWAY_S - 1)), sub)
    # Boundary: nbf == now + leeway is still acceptable (RFC 7519: "after or
    # equal to" nbf), and a token of exactly the size limit is not too large.
    sub = "sub-ok-nbf-at-leeway"
    ok("ok-nbf-exactly-leeway-ahead",
       m.std("RS256", "rs1", "rs1", sub, nbf=now + LEEWAY_S), sub)
    ok("ok-size-exactly-8192-bytes", sized_token(m, MAX_TOKEN_BYTES), "sub-sized")

    # ---- malformed --------------------------------------------------------
    good = m.std("RS256", "rs1", "rs1", "sub-malformed")
    g_head, g_pay, g_sig = good.split(".")
    rs_hdr = {"alg": "RS256", "typ": "JWT", "kid": "rs1"}
    bad("malformed-empty-string", "", "malformed")
    bad("malformed-two-parts", f"{g_head}.{g_pay}", "malformed")
    bad("malformed-four-parts", f"{good}.{g_sig}", "malformed")
    bad("malformed-empty-header-segment", f".{g_pay}.{g_sig}", "malformed")
    bad("malformed-header-bad-base64url-char", f"{g_head[:-1]}*.{g_pay}.{g_sig}", "malformed")
    # 4k+1 characters cannot be produced by any base64 encoding, so this is
    # undecodable rather than merely a changed (badly signed) payload.
    extra = "A" * ((1 - len(g_pay)) % 4)
    bad("malformed-payload-impossible-base64url-length", f"{g_head}.{g_pay}{extra}.{g_sig}", "malformed")
    bad("malformed-signature-bad-base64url-char", f"{g_head}.{g_pay}.{g_sig[:10]}!{g_sig[11:]}", "malformed")
    bad("malformed-header-not-json",
        m.token(b"this is not json", m.claims("sub-x"), "rs1", sign_alg="RS256"), "malformed")
    bad("malformed-header-json-array",
        m.token(b'["RS256"]', m.claims("sub-x"), "rs1", sign_alg="RS256"), "malformed")
    # Validly signed, so only the payload's shape is wrong.
    bad("malformed-payload-not-json", m.token(rs_hdr, b"not json at all", "rs1"), "malformed")
    bad("malformed-payload-json-array", m.token(rs_hdr, b'["sub","x"]', "rs1"), "malformed")

    # ---- too_large (otherwise valid, so size is the only defect) ----------
    bad("too-large-8193-bytes", sized_token(m, MAX_TOKEN_BYTES + 1), "too_large")
    bad("too-large-20k-bytes",
        m.std("RS256", "rs1", "rs1", "sub-huge", pad="y" * 15000), "too_large")

    # ---- unsupported_alg --------------------------------------------------
    bad("unsupported-alg-none-empty-signature",
        m.token({"alg": "none", "typ": "JWT"}, m.claims("sub-none")), "unsupported_alg")
    bad("unsupported-alg-hs512-with-secret",
        m.std("HS512", "hs", None, "sub-hs512"), "unsupported_alg")
    bad("unsupported-alg-rs512-kid-rs1",
        m.std("RS512", "rs1", "rs1", "sub-rs512"), "unsupported_alg")
    bad("unsupported-alg-missing",
        m.token({"typ": "JWT", "kid": "rs1"}, m.claims("sub-noalg"), "rs1",
                sign_alg="RS256"), "unsupported_alg")

    # ---- alg_mismatch -----------------------------------------------------
    # Where the key types allow it, signed with the named key under the
    # header's alg, so the signature itself would verify and only the
    # key/alg binding is wrong.
    bad("alg-mismatch-rs256-header-kid-ps1",
        m.std("RS256", "ps1", "ps1", "sub-am1"), "alg_mismatch")
    bad("alg-mismatch-ps256-header-kid-rs1",
        m.std("PS256", "rs1", "rs1", "sub-am2"), "alg_mismatch")
    bad("alg-mismatch-es256-header-kid-rs1",
        m.std("ES256", "es1", "rs1", "sub-am3"), "alg_mismatch")
    bad("alg-mismatch-ps256-kid-rs-noalg",
        m.std("PS256", "rs-noalg", "rs-noalg", "sub-am4"), "alg_mismatch")
    # Key-confusion attack: HMAC keyed with the public key's PEM text.  PyJWT
    # refuses PEM as an HMAC secret, hence hmac/hashlib.
    for kid in ("rs1", "rs-noalg"):
        pem = keys[kid].public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        unsigned = m.token({"alg": "HS256", "typ": "JWT", "kid": kid},
                           m.claims("sub-confusion"))
        signing_input = unsigned.rsplit(".", 1)[0].encode("ascii")
        mac = hmac.new(pem, signing_input, hashlib.sha256).digest()
        bad(f"alg-mismatch-hs256-kid-{kid}-hmac-with-public-pem",
            with_sig(unsigned, mac), "alg_mismatch")

    # ---- unknown_kid ------------------------------------------------------
    bad("unknown-kid-nope", m.std("RS256", "rs1", "nope", "sub-uk1"), "unknown_kid")
    bad("unknown-kid-case-differs", m.std("RS256", "rs1", "RS1", "sub-uk2"), "unknown_kid")
    # Several keys in the JWKS: a missing kid must not mean "try them all".
    bad("unknown-kid-missing-rs256", m.std("RS256", "rs1", None, "sub-uk3"), "unknown_kid")
    bad("unknown-kid-missing-es256", m.std("ES256", "es1", None, "sub-uk4"), "unknown_kid")

    # ---- bad_signature ----------------------------------------------------
    bad("bad-signature-rs256-byte-flipped",
        flip_sig_byte(m.std("RS256", "rs1", "rs1", "sub-bs1")), "bad_signature")
    bad("bad-signature-ps256-byte-flipped",
        flip_sig_byte(m.std("PS256", "ps1", "ps1", "sub-bs2")), "bad_signature")
    bad("bad-signature-es256-byte-flipped",
        flip_sig_byte(m.std("ES256", "es1", "es1", "sub-bs3")), "bad_signature")
    bad("bad-signature-eddsa-byte-flipped",
        flip_sig_byte(m.std("EdDSA", "ed1", "ed1", "sub-bs4")), "bad_signature")

    signed = m.std("RS256", "rs1", "rs1", "sub-bs5")
    head, _, sig = signed.split(".")
    forged = b64u(compact_json(m.claims("mallory")))
    bad("bad-signature-payload-altered-after-signing", f"{head}.{forged}.{sig}", "bad_signature")
    _, pay, sig = signed.split(".")
    # Still a supported alg and the same kid, so only the signature can object.
    forged_head = b64u(compact_json({"alg": "RS256", "typ": "at+jwt", "kid": "rs1"}))
    bad("bad-signature-header-altered-after-signing", f"{forged_head}.{pay}.{sig}", "bad_signature")

    es = m.std("ES256", "es1", "es1", "sub-bs6")
    bad("bad-signature-es256-truncated-63-bytes",
        with_sig(es, b64u_decode(es.split(".")[2])[:63]), "bad_signature")
    # JOSE wants raw r||s (RFC 7518 3.4); an ASN.1 DER signature is a classic
    # interop bug and must not be accepted even though it is "valid" ECDSA.
    es_input = es.rsplit(".", 1)[0].encode("ascii")
    der = keys["es1"].sign(es_input, ec.ECDSA(hashes.SHA256()))
    bad("bad-signature-es256-der-encoded", with_sig(es, der), "bad_signature")
    bad("bad-signature-es256-all-zero-r-s", with_sig(es, bytes(64)), "bad_signature")

    bad("bad-signature-rs256-signed-by-other-key-kid-rs1",
        m.std("RS256", "rogue-rsa", "rs1", "sub-bs8"), "bad_signature")
    wrong = Minter(keys, secrets.token_urlsafe(32).encode("ascii"), now)
    bad("bad-signature-hs256-wrong-secret",
        wrong.std("HS256", "hs", None, "sub-bs9"), "bad_signature")

    # ---- crit (otherwise valid) ------------------------------------------
    bad("crit-unknown-extension-present",
        m.std("RS256", "rs1", "rs1", "sub-c1",
              extra_header={"crit": ["exp-something"], "exp-something": True}), "crit")
    bad("crit-not-an-array",
        m.std("RS256", "rs1", "rs1", "sub-c2",
              extra_header={"crit": "exp-something", "exp-something": True}), "crit")
    bad("crit-empty-array",
        m.std("RS256", "rs1", "rs1", "sub-c3", extra_header={"crit": []}), "crit")
    # b64 is a real extension (RFC 7797) but we implement none.
    bad("crit-b64-not-supported",
        m.std("RS256", "rs1", "rs1", "sub-c4",
              extra_header={"crit": ["b64"], "b64": True}), "crit")

    # ---- expired ----------------------------------------------------------
    bad("expired-31s-ago-beyond-leeway",
        m.std("RS256", "rs1", "rs1", "sub-e1", exp=now - (LEEWAY_S + 1)), "expired")
    # Boundary: exp is exclusive (RFC 7519 4.1.4 "on or after"), so
    # exp == now - leeway is already expired.
    bad("expired-exactly-leeway-ago",
        m.std("RS256", "rs1", "rs1", "sub-e2", exp=now - LEEWAY_S), "expired")

    # ---- not_yet_valid ----------------------------------------------------
    bad("not-yet-valid-nbf-31s-ahead",
        m.std("RS256", "rs1", "rs1", "sub-n1", nbf=now + (LEEWAY_S + 1)), "not_yet_valid")

    # ---- bad_issuer -------------------------------------------------------
    bad("bad-issuer-wrong", m.std("RS256", "rs1", "rs1", "sub-i1", iss="https://evil.test"), "bad_issuer")
    bad("bad-issuer-trailing-slash",
        m.std("RS256", "rs1", "rs1", "sub-i2", iss=ISSUER + "/"), "bad_issuer")
    bad("bad-issuer-missing", m.std("RS256", "rs1", "rs1", "sub-i3", iss=None), "bad_issuer")

    # ---- bad_audience -----------------------------------------------------
    bad("bad-audience-wrong-string",
        m.std("RS256", "rs1", "rs1", "sub-a1", aud="other-service"), "bad_audience")
    bad("bad-audience-array-without-balanced",
        m.std("RS256", "rs1", "rs1", "sub-a3", aud=["other-service", "billing"]), "bad_audience")
    bad("bad-audience-empty-array",
        m.std("RS256", "rs1", "rs1", "sub-a4", aud=[]), "bad_audience")
    bad("bad-audience-missing", m.std("RS256", "rs1", "rs1", "sub-a5", aud=None), "bad_audience")

    # ---- missing_claim ----------------------------------------------------
    bad("missing-claim-no-sub", m.std("RS256", "rs1", "rs1", "unused", sub=None), "missing_claim")
    bad("missing-claim-sub-not-string", m.std("RS256", "rs1", "rs1", "unused", sub=42), "missing_claim")
    bad("missing-claim-no-exp", m.std("RS256", "rs1", "rs1", "sub-m1", exp=None), "missing_claim")
    # NumericDate must be a JSON number.  (PyJWT 2.6 would int() this string.)
    bad("missing-claim-exp-is-string", m.std("RS256", "rs1", "rs1", "sub-m2", exp="123"), "missing_claim")

    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases


def main(argv):
    if len(argv) != 2:
        sys.exit(f"usage: {argv[0]} OUT_DIR")
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)

    now = int(time.time())
    keys = make_keys()
    # The verifier uses the file's text bytes as the key (not a decoded
    # value), so mint with exactly those bytes.
    hs_secret_text = secrets.token_urlsafe(32)  # 32 random bytes -> 43 chars
    minter = Minter(keys, hs_secret_text.encode("ascii"), now)

    jwks = {"keys": [
        public_jwk("rs1", keys["rs1"], "RS256"),
        public_jwk("ps1", keys["ps1"], "PS256"),
        public_jwk("es1", keys["es1"], "ES256"),
        public_jwk("ed1", keys["ed1"], "EdDSA"),
        public_jwk("rs-noalg", keys["rs-noalg"], None),
    ]}
    doc = {
        "now": now,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "leeway_s": LEEWAY_S,
        "cases": build_cases(minter, keys),
    }

    with open(os.path.join(out_dir, "jwks.json"), "w") as f:
        json.dump(jwks, f, indent=2)
        f.write("\n")
    # No trailing newline: the secret is the file's bytes.
    with open(os.path.join(out_dir, "hs256.secret"), "w") as f:
        f.write(hs_secret_text)
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv)
