#!/usr/bin/env bash
# Stands in for building and running the container image, which these machines cannot do
# (no registry, and podman run fails here): assembles the image's runtime tree with
# scripts/assemble-rootfs.sh (the very script deploy/Dockerfile's runtime stage is made
# by) and runs the binaries from it with chroot, as uid/gid 10001, with an empty
# environment and nothing on the PATH:
#   - the tree holds the binaries, their libraries and the loader, the passwd/group
#     files, the CA bundle and /tmp, and no shell; every library resolves inside it;
#   - deploy/Dockerfile builds FROM scratch with that script, as uid 10001;
#   - balancectl --help, and balancectl keygen writing into the tree's /tmp;
#   - balanced on sqlite:/tmp/ledger.db answers /healthz from the host, runs as 10001
#     with no environment, creates an account, and exits 0 on SIGTERM;
#   - the gateway, with keygen's JWKS file, answers 401 without a token and 200 with
#     one minted by balancectl token, and exits 0 on SIGTERM;
#   - the gateway fetches an https:// JWKS trusting only the tree's CA bundle: refused
#     while the server's CA is not in it, accepted once it is.
# Needs root (chroot). A step that fails is counted as failed, never skipped.
# Usage: tests/deploy/rootfs_test.sh BUILD_DIR
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd) || { echo "no build dir $1"; echo "0 passed, 1 failed"; exit 1; }
readonly uid=10001
work=$(mktemp -d /tmp/balanced-rootfs-XXXXXX)
root=$work/root
source "$repo/tests/deploy/lib.sh"
# wait_status CODE URL [CURL_ARGS...]: polls for up to 10 s.
wait_status() {
  local want=$1 url=$2 got; shift 2
  for _ in $(seq 100); do
    got=$(status "$url" "$@"); [[ "$got" == "$want" ]] && return 0
    sleep 0.1
  done
  echo "  $url answered $got, want $want"; return 1
}
# in_root COMMAND...: runs COMMAND inside the tree as 10001:10001, environment emptied.
in_root() { env -i /usr/sbin/chroot --userspec=$uid:$uid --groups=$uid "$root" "$@"; }
# start_in_root LOG COMMAND...: the same in the background, output to LOG; $! is its pid
# (env and chroot exec, so it is the pid of the binary itself).
start_in_root() {
  local log=$1; shift
  env -i /usr/sbin/chroot --userspec=$uid:$uid --groups=$uid "$root" "$@" > "$log" 2>&1 &
}
# stop PID NAME: SIGTERM, then its exit status must be 0 within 30 s.
stop() {
  local pid=$1 name=$2 code
  kill -TERM "$pid" 2>/dev/null || { fail "$name exits 0 on SIGTERM" "not running"; return; }
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then fail "$name exits 0 on SIGTERM" "still running after 30 s"; return; fi
  wait "$pid"; code=$?
  [[ $code -eq 0 ]] && pass "$name exits 0 on SIGTERM" || fail "$name exits 0 on SIGTERM" "exit status $code"
}

if [[ $(id -u) -ne 0 ]]; then fail "preconditions" "needs root for chroot (run as root, as make test does here)"; finish; fi
for tool in /usr/sbin/chroot curl python3 openssl; do
  command -v "$tool" >/dev/null || { fail "preconditions" "$tool missing (scripts/install-deps.sh test)"; finish; }
done

# 1. The tree.
if "$repo/scripts/assemble-rootfs.sh" "$build" "$root" > "$work/assemble.log" 2>&1; then
  pass "assemble-rootfs.sh $(tail -1 "$work/assemble.log" | sed 's/^assemble-rootfs: [^:]*: //')"
else
  fail "assemble-rootfs.sh" "$(cat "$work/assemble.log")"; finish
fi

problems=()
for binary in balanced balance-gateway balancectl; do
  [[ -x "$root/usr/local/bin/$binary" ]] || problems+=("no /usr/local/bin/$binary")
done
[[ -f "$root/etc/ssl/certs/ca-certificates.crt" ]] || problems+=("no CA bundle")
[[ $(readlink "$root/usr/lib/ssl/cert.pem") == /etc/ssl/certs/ca-certificates.crt ]] || problems+=("no /usr/lib/ssl/cert.pem link to the bundle")
[[ -x "$root/lib64/ld-linux-x86-64.so.2" ]] || problems+=("no dynamic loader at /lib64/ld-linux-x86-64.so.2")
grep -qx "balanced:x:$uid:$uid:balanced:/nonexistent:/usr/sbin/nologin" "$root/etc/passwd" || problems+=("no uid $uid in /etc/passwd")
grep -qx "balanced:x:$uid:" "$root/etc/group" || problems+=("no gid $uid in /etc/group")
[[ $(stat -c %a "$root/tmp") == 1777 ]] || problems+=("/tmp is not 1777")
ls "$root"/usr/lib/*/libmariadb3/plugin/caching_sha2_password.so > /dev/null 2>&1 || problems+=("no MariaDB caching_sha2_password plugin (MySQL 8's default auth)")
# Nothing but what the binaries need: no shell, no other program.
while IFS= read -r file; do
  case "$file" in
    /usr/local/bin/balanced | /usr/local/bin/balance-gateway | /usr/local/bin/balancectl) ;;
    /usr/lib/x86_64-linux-gnu/*.so* | /usr/lib/*/libmariadb3/plugin/*.so) ;;
    /etc/passwd | /etc/group | /etc/nsswitch.conf | /etc/ssl/certs/ca-certificates.crt) ;;
    *) problems+=("unexpected file $file") ;;
  esac
done < <(cd "$root" && find . -type f | sed 's/^\.//')
for shell in sh bash dash busybox ash; do
  [[ -z $(find "$root" -name "$shell") ]] || problems+=("a $shell in the tree")
done
# Every ELF file's libraries, as the tree's own loader resolves them inside the tree.
while IFS= read -r object; do
  listing=$(/usr/sbin/chroot "$root" /lib64/ld-linux-x86-64.so.2 --list "$object" 2>&1) ||
    { problems+=("the loader cannot list $object: $listing"); continue; }
  grep -q 'not found' <<< "$listing" && problems+=("$object: $(grep 'not found' <<< "$listing" | xargs)")
done < <(cd "$root" && find . -type f \( -path './usr/local/bin/*' -o -name '*.so' \) | sed 's/^\.//')
if [[ ${#problems[@]} -eq 0 ]]; then
  pass "the tree: three binaries, libraries resolving inside it, uid $uid, CA bundle, /tmp, no shell"
else
  fail "the tree" "$(printf '%s; ' "${problems[@]}")"
fi

# 2. The Dockerfile builds the image from this very tree.
dockerfile=$repo/deploy/Dockerfile
problems=()
if [[ -f "$dockerfile" ]]; then
  grep -Eq '^FROM debian:bookworm AS build$' "$dockerfile" || problems+=("no 'FROM debian:bookworm AS build' stage")
  grep -Eq 'scripts/install-deps\.sh build' "$dockerfile" || problems+=("build deps not from scripts/install-deps.sh build")
  grep -Eq 'cmake --build build --target balanced balance-gateway balancectl' "$dockerfile" || problems+=("does not build the three targets")
  grep -Eq '^RUN scripts/assemble-rootfs\.sh build /rootfs$' "$dockerfile" || problems+=("does not run scripts/assemble-rootfs.sh build /rootfs")
  last_from=$(grep -E '^FROM ' "$dockerfile" | tail -1)
  [[ "$last_from" == "FROM scratch" ]] || problems+=("the runtime stage is '$last_from', not FROM scratch")
  runtime=$(awk '/^FROM scratch/ {on=1} on' "$dockerfile")
  grep -qx 'COPY --from=build /rootfs/ /' <<< "$runtime" || problems+=("the runtime stage does not copy /rootfs from the build stage")
  [[ $(grep -cE '^(COPY|ADD|RUN) ' <<< "$runtime") -eq 1 ]] || problems+=("the runtime stage adds more than the tree")
  grep -qx "USER $uid:$uid" <<< "$runtime" || problems+=("no USER $uid:$uid")
  grep -qi 'tini' "$dockerfile" && problems+=("mentions tini")
  grep -qx 'ENTRYPOINT \["/usr/local/bin/balanced"\]' <<< "$runtime" || problems+=("no exec-form ENTRYPOINT of /usr/local/bin/balanced")
  [[ -f "$repo/.dockerignore" ]] && grep -qx 'build' "$repo/.dockerignore" || problems+=(".dockerignore does not keep build/ out")
else
  problems+=("no deploy/Dockerfile")
fi
[[ ${#problems[@]} -eq 0 ]] && pass "deploy/Dockerfile: bookworm build stage, FROM scratch + the same tree, USER $uid" \
                             || fail "deploy/Dockerfile" "$(printf '%s; ' "${problems[@]}")"

# 3. balancectl.
if output=$(in_root /usr/local/bin/balancectl --help 2>&1) && grep -q '^Subcommands:' <<< "$output"; then
  pass "balancectl --help (uid $uid, empty environment)"
else
  fail "balancectl --help" "$output"
fi
if output=$(in_root /usr/local/bin/balancectl keygen --alg ES256 --kid k1 --key-out /tmp/k1.pem --jwks-out /tmp/jwks.json 2>&1) &&
   [[ $(stat -c '%u %a' "$root/tmp/k1.pem" 2>/dev/null) == "$uid 600" ]] &&
   [[ $(stat -c '%u' "$root/tmp/jwks.json" 2>/dev/null) == "$uid" ]] &&
   grep -q '"kid":"k1"' "$root/tmp/jwks.json"; then
  pass "balancectl keygen into the tree's /tmp (owned by $uid, key 0600)"
else
  fail "balancectl keygen" "$output $(ls -ln "$root/tmp" 2>&1)"
fi

# 4. balanced.
api=$(free_port); api_admin=$(free_port)
start_in_root "$work/balanced.log" /usr/local/bin/balanced --listen "127.0.0.1:$api" \
  --admin-listen "127.0.0.1:$api_admin" --db sqlite:/tmp/ledger.db
balanced_pid=$!; pids+=("$balanced_pid")
if wait_status 200 "http://127.0.0.1:$api/healthz"; then
  pass "balanced from the tree answers /healthz 200 from the host"
else
  fail "balanced /healthz" "$(tail -5 "$work/balanced.log")"
fi
problems=()
ids=$(awk '/^Uid:|^Gid:/ {print $2, $3, $4, $5} /^Groups:/ {print "groups", $2, $3}' "/proc/$balanced_pid/status" 2>/dev/null | xargs)
[[ "$ids" == "$uid $uid $uid $uid $uid $uid $uid $uid groups $uid" ]] || problems+=("ids: '$ids'")
[[ $(tr -d '\0' 2>/dev/null < "/proc/$balanced_pid/environ" | wc -c) -eq 0 ]] || problems+=("environment not empty")
[[ $(readlink "/proc/$balanced_pid/root") == "$root" ]] || problems+=("root is $(readlink "/proc/$balanced_pid/root")")
code=$(status "http://127.0.0.1:$api/accounts" -X POST -H 'Content-Type: application/json' -d '{"accountNumber":"alice","initialBalance":500}')
[[ "$code" == 201 ]] || problems+=("POST /accounts answered $code")
[[ -f "$root/tmp/ledger.db" && $(stat -c %u "$root/tmp/ledger.db") == "$uid" ]] || problems+=("no /tmp/ledger.db owned by $uid in the tree")
code=$(status "http://127.0.0.1:$api_admin/readyz")
[[ "$code" == 200 ]] || problems+=("admin /readyz answered $code")
[[ ${#problems[@]} -eq 0 ]] && pass "balanced runs as $uid:$uid in the tree with no environment, writes its ledger, ready" \
                             || fail "balanced as $uid" "$(printf '%s; ' "${problems[@]}")"

# 5. The gateway, with keygen's JWKS file.
public=$(free_port); gw_admin=$(free_port)
start_in_root "$work/gateway.log" /usr/local/bin/balance-gateway --listen "127.0.0.1:$public" \
  --admin-listen "127.0.0.1:$gw_admin" --upstream "http://127.0.0.1:$api" --jwks /tmp/jwks.json \
  --jwt-issuer https://issuer.test --jwt-audience balanced
gateway_pid=$!; pids+=("$gateway_pid")
token=$(in_root /usr/local/bin/balancectl token --key /tmp/k1.pem --kid k1 --sub alice --scope balances:read \
          --accounts alice --iss https://issuer.test --aud balanced 2>&1)
if wait_status 200 "http://127.0.0.1:$gw_admin/readyz" &&
   wait_status 401 "http://127.0.0.1:$public/accounts/alice/balance" &&
   wait_status 200 "http://127.0.0.1:$public/accounts/alice/balance" -H "Authorization: Bearer $token"; then
  pass "the gateway from the tree: 401 without a token, 200 with one from balancectl token"
else
  fail "the gateway from the tree" "$(tail -5 "$work/gateway.log")"
fi

# 6. An https:// JWKS, trusted only through the tree's CA bundle.
tls=$work/tls; mkdir -p "$tls" "$tls/www"
cp "$root/tmp/jwks.json" "$tls/www/jwks.json" 2>/dev/null
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test-ca \
     -keyout "$tls/ca.key" -out "$tls/ca.crt" > "$tls/openssl.log" 2>&1 &&
   openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
     -keyout "$tls/server.key" -out "$tls/server.csr" >> "$tls/openssl.log" 2>&1 &&
   openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 1 \
     -extfile <(printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n') -out "$tls/server.crt" >> "$tls/openssl.log" 2>&1; then
  jwks_port=$(free_port)
  python3 - "$tls" "$jwks_port" > "$tls/server.log" 2>&1 <<'PY' &
import functools, http.server, ssl, sys
tls, port = sys.argv[1], int(sys.argv[2])
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tls + "/www")
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(tls + "/server.crt", tls + "/server.key")
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
  pids+=("$!")
  wait_status 200 "https://127.0.0.1:$jwks_port/jwks.json" --cacert "$tls/ca.crt" > /dev/null
  url="https://127.0.0.1:$jwks_port/jwks.json"
  gateway_https() {  # gateway_https PUBLIC ADMIN: starts a gateway on the https JWKS; its pid in $!
    start_in_root "$work/gateway-https.log" /usr/local/bin/balance-gateway --listen "127.0.0.1:$1" \
      --admin-listen "127.0.0.1:$2" --upstream "http://127.0.0.1:$api" --jwks "$url" \
      --jwt-issuer https://issuer.test --jwt-audience balanced
  }
  # Before the CA is in the bundle, the JWKS cannot load and the gateway refuses to start.
  p1=$(free_port); a1=$(free_port)
  gateway_https "$p1" "$a1"; untrusted_pid=$!; pids+=("$untrusted_pid")
  for _ in $(seq 100); do kill -0 "$untrusted_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$untrusted_pid" 2>/dev/null; then
    fail "https JWKS, untrusted CA" "the gateway started with a JWKS server its bundle does not trust"
    kill "$untrusted_pid" 2>/dev/null
  else
    wait "$untrusted_pid"; code=$?
    [[ $code -ne 0 ]] && grep -qi 'jwks' "$work/gateway-https.log" \
      && pass "https JWKS from a CA not in the tree's bundle: refused (exit $code)" \
      || fail "https JWKS, untrusted CA" "exit $code: $(tail -3 "$work/gateway-https.log")"
  fi
  cat "$tls/ca.crt" >> "$root/etc/ssl/certs/ca-certificates.crt"
  p2=$(free_port); a2=$(free_port)
  gateway_https "$p2" "$a2"; trusted_pid=$!; pids+=("$trusted_pid")
  if wait_status 200 "http://127.0.0.1:$a2/readyz" &&
     wait_status 200 "http://127.0.0.1:$p2/accounts/alice/balance" -H "Authorization: Bearer $token"; then
    pass "https JWKS with the CA added to the tree's bundle: keys fetched, token accepted"
  else
    fail "https JWKS, trusted CA" "$(tail -5 "$work/gateway-https.log")"
  fi
  stop "$trusted_pid" "the gateway (https JWKS)"
else
  fail "https JWKS" "openssl could not make the test certificates: $(tail -3 "$tls/openssl.log")"
fi

# 7. SIGTERM drains and exits 0.
stop "$gateway_pid" "the gateway"
stop "$balanced_pid" "balanced"
grep -q '"log.level"' "$work/balanced.log" || fail "balanced logged" "no JSON log line: $(head -3 "$work/balanced.log")"

finish
