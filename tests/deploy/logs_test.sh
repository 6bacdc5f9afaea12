#!/usr/bin/env bash
# The logs that Fluent Bit ships (deploy/logging) are ECS JSON, and hold no secret.
# Fluent Bit itself cannot be installed here, so this checks both ends of its pipeline:
#   - balanced (SQLite, with a --db-password-file), a second balanced on a MySQL URL
#     with an inline password and a password file but no server (the MySQL path up to
#     the connection, with its own token checks and an HS256 secret), and balance-gateway
#     in front of the first (plain HTTP on loopback, JWKS from balancectl keygen, tokens
#     from balancectl token and HS256 ones made here), all in a non-UTC time zone;
#   - traffic down many log paths: 200/201, 400 (malformed JSON, malformed HTTP), 401
#     (none, forged, garbage, wrong HS256 secret), 403, 404, 405, 413, 429 (a small
#     --rate-limit), 431, a token in the query string, a path trying to inject a line,
#     JWKS rotated and broken, balanced stopped under the gateway (502/503, out of
#     rotation) and started again (back), SIGHUP to all, start-up refusals, SIGTERM;
#   - every line on stdout and stderr of every process is one ECS JSON object of its
#     service.name with @timestamp (RFC 3339, UTC, now), log.level, message or the
#     access-log fields; nothing on stderr; no token, no Bearer JWT, no HS256 secret, no
#     database password anywhere; the expected events and statuses are there; and, put
#     through what deploy/logging's Fluent Bit does to them, the lines make documents that
#     fit one Elasticsearch index (tests/deploy/logs_check.py);
#   - the checker rejects crafted bad lines (so it cannot pass vacuously);
#   - deploy/logging renders with Debian's kubectl 1.20 (kustomize v2, fetched with
#     apt-get download when missing) and with kustomize v5 (kubectl on the PATH, where
#     there is one), and the DaemonSet runs Fluent Bit on the ConfigMap made of
#     deploy/logging's exact fluent-bit.conf and parsers.conf.
# Everything on 127.0.0.1 free ports, stopped by pid. A step that fails counts as failed.
# Usage: tests/deploy/logs_test.sh BUILD_DIR                 Last line: "N passed, M failed".
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd) || { echo "FAIL: no build dir $1"; echo "0 passed, 1 failed"; exit 1; }
check="$repo/tests/deploy/logs_check.py"
work=$(mktemp -d /tmp/balanced-logs-XXXXXX)
source "$repo/tests/deploy/lib.sh"
# wait_log FILE TEXT: up to 15 s for a line holding TEXT.
wait_log() { for _ in $(seq 150); do grep -qF -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# stop PID NAME: SIGTERM, then exit status 0 within 30 s.
stop() {
  local pid=$1 name=$2 code
  kill -TERM "$pid" 2>/dev/null || { fail "$name exits 0 on SIGTERM" "not running"; return 1; }
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then fail "$name exits 0 on SIGTERM" "still running after 30 s"; return 1; fi
  wait "$pid"; code=$?
  [[ $code -eq 0 ]] && pass "$name exits 0 on SIGTERM" || fail "$name exits 0 on SIGTERM" "exit status $code"
}
# The binaries run in a zone far from UTC: "Z" must mean UTC.
export TZ=Asia/Kolkata

for binary in balanced balance-gateway balancectl; do
  [[ -x "$build/$binary" ]] || { fail "preconditions" "$build/$binary not built"; finish; }
done
for tool in python3 curl; do
  command -v "$tool" > /dev/null || { fail "preconditions" "$tool missing (scripts/install-deps.sh test)"; finish; }
done

# ---- 0. The checker itself.
# check_run NAME LOG CODE: counts the PASS and FAIL lines logs_check.py wrote to LOG, and
# fails when its exit status says otherwise (a crash after the first PASS line would hide
# every check after it) or when it wrote no PASS line at all.
check_run() {
  local name=$1 log=$2 code=$3 passes fails
  cat "$log"
  passes=$(grep -c '^PASS:' "$log"); fails=$(grep -c '^FAIL:' "$log")
  passed=$((passed + passes)); failed=$((failed + fails))
  if [[ $code -ne 0 && $fails -eq 0 ]]; then
    fail "logs_check.py $name exits 0" "exit status $code without a FAIL line: $(tail -3 "$log")"
  elif [[ $code -eq 0 && $fails -ne 0 ]]; then
    fail "logs_check.py $name exits non-zero after a FAIL line" "exit status 0"
  fi
  [[ $passes -gt 0 ]] || fail "logs_check.py $name" "no PASS line: $(tail -3 "$log")"
}

python3 "$check" selftest > "$work/selftest.log" 2>&1
check_run selftest "$work/selftest.log" $?

# ---- 1. Keys, tokens, secrets: everything that must never reach a log.
"$build/balancectl" keygen --alg ES256 --kid k1 --key-out "$work/k1.pem" --jwks-out "$work/jwks.json" > /dev/null &&
  "$build/balancectl" keygen --alg ES256 --kid k1 --key-out "$work/other.pem" --jwks-out "$work/other.json" > /dev/null ||
  { fail "balancectl keygen"; finish; }
cp "$work/jwks.json" "$work/gw-jwks.json"  # the gateway's, rotated below
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(33))'; }
hs_secret=$(secret); hs_wrong=$(secret)
db_password_file_value="file-$(secret)"; db_password_inline="inline-$(secret)"
printf '%s\n' "$hs_secret" > "$work/hs256.secret"
printf '%s\n' "$db_password_file_value" > "$work/db-password"
iss=https://issuer.test aud=balanced
mint() {  # mint KEY SUB SCOPE ACCOUNTS
  "$build/balancectl" token --key "$1" --kid k1 --sub "$2" --scope "$3" --accounts "$4" --iss "$iss" --aud "$aud"
}
mint_hs256() {  # mint_hs256 SECRET SUB SCOPE ACCOUNT
  python3 - "$@" "$iss" "$aud" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret, sub, scope, account, iss, aud = sys.argv[1:]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "at+jwt"}).encode())
body = b64(json.dumps({"sub": sub, "iss": iss, "aud": aud, "exp": int(time.time()) + 3600,
                       "scope": scope, "accounts": [account]}).encode())
sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
rw="balances:read transactions:write"
ops=$(mint "$work/k1.pem" ops admin "") &&
  alice=$(mint "$work/k1.pem" alice "$rw" alice) &&
  alice_read=$(mint "$work/k1.pem" alice balances:read alice) &&
  carol=$(mint "$work/k1.pem" carol "$rw" carol) &&
  forged=$(mint "$work/other.pem" alice "$rw" alice) &&
  hs_good=$(mint_hs256 "$hs_secret" alice "$rw" alice) &&
  hs_bad=$(mint_hs256 "$hs_wrong" alice "$rw" alice) || { fail "minting tokens"; finish; }
printf '%s\n' "$ops" "$alice" "$alice_read" "$carol" "$forged" "$hs_good" "$hs_bad" "$hs_secret" "$hs_wrong" \
  "$db_password_file_value" "$db_password_inline" > "$work/forbidden"
# A signature alone is a secret too (a line cut after the payload would still leak it).
for token in "$ops" "$alice" "$carol" "$hs_good"; do echo "${token##*.}" >> "$work/forbidden"; done

# ---- 2. The processes.
since=$(date +%s.%N)
api=$(free_port); api_admin=$(free_port)
start_balanced() {  # appends: the same replica is started again below
  "$build/balanced" --listen "127.0.0.1:$api" --admin-listen "127.0.0.1:$api_admin" --db "sqlite:$work/a/ledger.db" \
    --db-password-file "$work/db-password" --threads 2 --log-level debug --access-log on \
    >> "$work/balanced.out" 2>> "$work/balanced.err" &
  balanced_pid=$!; pids+=("$balanced_pid")
}
start_balanced
closed=$(free_port)  # nothing listens there: the MySQL server is "down"
m_api=$(free_port)
"$build/balanced" --listen "127.0.0.1:$m_api" --db "mysql://app:$db_password_inline@127.0.0.1:$closed/ledger" \
  --db-password-file "$work/db-password" --jwks "$work/jwks.json" --jwt-issuer "$iss" --jwt-audience "$aud" \
  --jwt-hs256-secret-file "$work/hs256.secret" --threads 1 --log-level debug \
  > "$work/balanced-mysql.out" 2> "$work/balanced-mysql.err" &
mysql_pid=$!; pids+=("$mysql_pid")
public=$(free_port); gw_admin=$(free_port)
"$build/balance-gateway" --listen "127.0.0.1:$public" --admin-listen "127.0.0.1:$gw_admin" \
  --upstream "http://127.0.0.1:$api" --jwks "$work/gw-jwks.json" --jwt-issuer "$iss" --jwt-audience "$aud" \
  --jwt-hs256-secret-file "$work/hs256.secret" --rate-limit 20/s:20 --ip-rate-limit 10000/s:10000 \
  --threads 2 --log-level debug --drain-timeout-s 5 > "$work/gateway.out" 2> "$work/gateway.err" &
gateway_pid=$!; pids+=("$gateway_pid")
started=1
wait_port "$api" && wait_port "$api_admin" || { started=0; fail "balanced starts" "$(tail -3 "$work/balanced.out" "$work/balanced.err")"; }
wait_port "$m_api" || { started=0; fail "balanced (MySQL URL, no server) starts" "$(tail -3 "$work/balanced-mysql.out" "$work/balanced-mysql.err")"; }
wait_port "$public" || { started=0; fail "balance-gateway starts" "$(tail -3 "$work/gateway.out" "$work/gateway.err")"; }
ready=0
for _ in $(seq 100); do [[ $(status "http://127.0.0.1:$gw_admin/readyz") == 200 ]] && { ready=1; break; }; sleep 0.1; done
[[ $started -eq 1 && $ready -eq 1 ]] && pass "balanced (SQLite), balanced (MySQL URL, no server) and the gateway serve; the gateway is ready" ||
  { fail "the gateway is ready" "$(tail -3 "$work/gateway.out")"; finish; }

# ---- 3. Traffic.
gw=http://127.0.0.1:$public
json=(-H 'Content-Type: application/json')
as() { echo "Authorization: Bearer $1"; }
trace=4bf92f3577b34da6a3ce929d0e0e4736
problems=()
expect() {  # expect WANT[|WANT] WHAT CURL_ARGS...: the status, else a problem
  local want=$1 what=$2 got; shift 2
  got=$(status "$@")
  [[ "|$want|" == *"|$got|"* ]] || problems+=("$what: HTTP $got, want $want")
}
for account in alice bob carol; do
  expect 201 "create $account" "$gw/accounts" -X POST -H "$(as "$ops")" "${json[@]}" -d "{\"accountNumber\":\"$account\",\"initialBalance\":10000}"
done
expect 200 "read" "$gw/accounts/alice/balance" -H "$(as "$alice")" -H "X-Request-Id: logs-test-read" \
  -H "traceparent: 00-$trace-00f067aa0ba902b7-01"
transfer='{"transactionId":"t-1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":25}'
expect 201 "transfer" "$gw/accounts/transactions" -X POST -H "$(as "$alice")" "${json[@]}" -d "$transfer"
expect 200 "replay" "$gw/accounts/transactions" -X POST -H "$(as "$alice")" "${json[@]}" -d "$transfer"
expect 200 "history" "$gw/accounts/alice/transactions" -H "$(as "$alice")"
expect 200 "token in the query string" "$gw/accounts/alice/balance?access_token=$alice" -H "$(as "$alice")"
expect 200 "HS256 token" "$gw/accounts/alice/balance" -H "$(as "$hs_good")"
expect 401 "no token" "$gw/accounts/alice/balance"
expect 401 "forged token" "$gw/accounts/alice/balance" -H "$(as "$forged")" -H "X-Request-Id: logs-test-forged"
expect 401 "garbage token" "$gw/accounts/alice/balance" -H "Authorization: Bearer not.a.jwt"
expect 401 "HS256, wrong secret" "$gw/accounts/alice/balance" -H "$(as "$hs_bad")"
expect 403 "someone else's account" "$gw/accounts/bob/balance" -H "$(as "$alice")"
expect 403 "scope missing" "$gw/accounts/transactions" -X POST -H "$(as "$alice_read")" "${json[@]}" \
  -d '{"transactionId":"t-2","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":1}'
expect 404 "unknown path" "$gw/nowhere" -H "$(as "$alice")"
expect 404 "unknown transaction" "$gw/transactions/no-such-id" -H "$(as "$alice")"
expect 400 "malformed JSON" "$gw/accounts/transactions" -X POST -H "$(as "$alice")" "${json[@]}" -d '{"sourceAccountNumber":'
expect 405 "method not allowed" "$gw/accounts/alice/balance" -X DELETE -H "$(as "$alice")"
expect "401|403|404" "a path trying to inject a log line" \
  "$gw/accounts/%0A%7B%22log.level%22%3A%22error%22%2C%22message%22%3A%22injected%22%7D%0A/balance" -H "$(as "$alice")"
expect "401|403|404" "a path with bytes that are not UTF-8" "$gw/accounts/%FF%FE%22/balance" -H "$(as "$alice")"
head -c 70000 /dev/zero | tr '\0' 'x' > "$work/big-body"
expect 413 "body over 64 KiB" "$gw/accounts/transactions" -X POST -H "$(as "$alice")" "${json[@]}" --data-binary "@$work/big-body"
expect 431 "head over 16 KiB" "$gw/accounts/alice/balance" -H "$(as "$alice")" -H "X-Padding: $(head -c 20000 /dev/zero | tr '\0' 'p')"
# Malformed HTTP (a header line without a colon) after an Authorization header.
got=$(python3 - "$public" "$alice" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(f"GET /accounts/alice/balance HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sys.argv[2]}\r\nthis is not a header\r\n\r\n".encode())
print(s.recv(65536).split(b" ")[1].decode())
PY
) || got=none
[[ "$got" == 400 ]] || problems+=("malformed HTTP: $got, want 400")
# 429: 60 quick requests of one principal against 20/s, burst 20.
# shellcheck disable=SC2046  # one URL and its -o per word
codes=$(curl -s -w '%{http_code}\n' --max-time 30 -H "$(as "$carol")" \
  $(for _ in $(seq 60); do echo "$gw/accounts/carol/balance -o /dev/null"; done) 2>/dev/null | sort | uniq -c | xargs)
[[ "$codes" == *" 429"* ]] || problems+=("rate limit: $codes, want some 429")
# The second balanced, directly: its own token checks, its database down.
expect 503 "balanced (MySQL down), HS256 token" "http://127.0.0.1:$m_api/accounts/alice/balance" -H "$(as "$hs_good")"
expect 401 "balanced (MySQL down), forged token" "http://127.0.0.1:$m_api/accounts/alice/balance" -H "$(as "$forged")"
expect 400 "balanced, malformed JSON" "http://127.0.0.1:$api/accounts/transactions" -X POST "${json[@]}" -d '{"amount":'
[[ ${#problems[@]} -eq 0 ]] && pass "traffic: 200, 201, 400 x3, 401 x4, 403 x2, 404, 405, 413, 429, 431, 503 as expected" ||
  fail "traffic" "$(printf '%s; ' "${problems[@]}")"

# JWKS: a second key appears (loaded), then the file breaks (kept), then it is whole again.
problems=()
"$build/balancectl" keygen --alg ES256 --kid k2 --key-out "$work/k2.pem" --jwks-out "$work/gw-jwks.json" > /dev/null
wait_log "$work/gateway.out" '"keys":"2"' || problems+=("no 'JWKS loaded' with 2 keys")
cp "$work/gw-jwks.json" "$work/gw-jwks.good"
echo '{"keys": [' > "$work/gw-jwks.tmp" && mv "$work/gw-jwks.tmp" "$work/gw-jwks.json"
wait_log "$work/gateway.out" 'JWKS not loaded' || problems+=("no 'JWKS not loaded' after breaking the file")
cp "$work/gw-jwks.good" "$work/gw-jwks.tmp" && mv "$work/gw-jwks.tmp" "$work/gw-jwks.json"
k2=$("$build/balancectl" token --key "$work/k2.pem" --kid k2 --sub alice --scope "$rw" --accounts alice --iss "$iss" --aud "$aud")
echo "$k2" >> "$work/forbidden"
ok=0
for _ in $(seq 50); do [[ $(status "$gw/accounts/alice/balance" -H "$(as "$k2")") == 200 ]] && { ok=1; break; }; sleep 0.1; done
[[ $ok -eq 1 ]] || problems+=("a token of the new key is not accepted")
[[ ${#problems[@]} -eq 0 ]] && pass "JWKS rotated (loaded, 2 keys), broken (kept), restored: the new key's token passes" ||
  fail "JWKS rotation" "$(printf '%s; ' "${problems[@]}")"

# SIGHUP to all three.
kill -HUP "$gateway_pid" "$balanced_pid" "$mysql_pid"
if wait_log "$work/gateway.out" '"reloading"' && wait_log "$work/balanced.out" '"reloading"' &&
   wait_log "$work/balanced-mysql.out" '"reloading"'; then
  pass "SIGHUP: all three log reloading, and go on serving"
else
  fail "SIGHUP" "no 'reloading' line from all three"
fi

# balanced stops under the gateway: 502 or 503, out of rotation; started again: back.
problems=()
stop "$balanced_pid" "balanced (SQLite)"
expect "502|503" "balanced stopped" "$gw/accounts/alice/balance" -H "$(as "$alice")"
wait_log "$work/gateway.out" 'upstream out of rotation' || problems+=("no 'upstream out of rotation'")
expect 503 "no healthy replica" "$gw/accounts/alice/balance" -H "$(as "$alice")"
start_balanced
wait_port "$api" || problems+=("balanced did not start again")
wait_log "$work/gateway.out" 'upstream back in rotation' || problems+=("no 'upstream back in rotation'")
ok=0
for _ in $(seq 50); do [[ $(status "$gw/accounts/alice/balance" -H "$(as "$alice")") == 200 ]] && { ok=1; break; }; sleep 0.1; done
[[ $ok -eq 1 ]] || problems+=("no 200 once balanced is back")
[[ ${#problems[@]} -eq 0 ]] && pass "balanced stopped: 502/503 and out of rotation; started again: back in rotation, 200" ||
  fail "upstream down and back" "$(printf '%s; ' "${problems[@]}")"

# Start-up refusals are log lines too.
problems=()
"$build/balance-gateway" --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$api" \
  > "$work/gateway-refused.out" 2> "$work/gateway-refused.err" && problems+=("the gateway started without --jwks")
"$build/balanced" --listen "0.0.0.0:$(free_port)" --db "sqlite:$work/b/ledger.db" \
  > "$work/balanced-refused.out" 2> "$work/balanced-refused.err" && problems+=("balanced started on 0.0.0.0 without token checks")
"$build/balanced" --listen "127.0.0.1:0" --db "mysql://app:$db_password_inline@127.0.0.1/" \
  > "$work/balanced-badurl.out" 2> "$work/balanced-badurl.err" && problems+=("balanced started on a MySQL URL without a database")
[[ ${#problems[@]} -eq 0 ]] && pass "start-up refusals (no --jwks, a public address, a bad --db URL) exit non-zero" ||
  fail "start-up refusals" "$(printf '%s; ' "${problems[@]}")"

stop "$gateway_pid" "balance-gateway"
stop "$balanced_pid" "balanced (SQLite)"
stop "$mysql_pid" "balanced (MySQL URL)"
until=$(date +%s.%N)

# ---- 4. The lines.
shopt -s nullglob
errs=()
for file in "$work"/*.err; do [[ -s "$file" ]] && errs+=("$(basename "$file"): $(head -c 300 "$file")"); done
[[ ${#errs[@]} -eq 0 ]] && pass "nothing on stderr: every log line is on stdout (DESIGN.md section 6)" ||
  fail "stderr is empty" "$(printf '%s; ' "${errs[@]}")"
files=()  # stdout, and stderr when anything is there (every line must parse, wherever it is)
for file in "$work"/balanced*.out "$work"/balanced*.err; do [[ $file == *.out || -s $file ]] && files+=("balanced=$file"); done
for file in "$work"/gateway*.out "$work"/gateway*.err; do [[ $file == *.out || -s $file ]] && files+=("balance-gateway=$file"); done
expects=()
for message in "balanced serving" reloading draining stopped "database not reachable yet" "JWKS loaded" \
               "cannot open the database: --db mysql://app:***@127.0.0.1/: no database (expected mysql://user:password@host:port/database[?tls=disabled|required|verify-ca|verify-identity&tls-ca=FILE])"; do
  expects+=(--expect-message "balanced:$message")
done
for message in "balance-gateway serving" reloading draining stopped "JWKS loaded" "JWKS not loaded; keeping the keys in use" \
               "upstream out of rotation" "upstream back in rotation" \
               "--jwks is required: the gateway lets nothing through without token checks"; do
  expects+=(--expect-message "balance-gateway:$message")
done
for code in 200 201 400 401 403 404 405 413 429 431 "502|503"; do expects+=(--expect-status "$code"); done
expects+=(--expect-access "http.request.id=logs-test-read,trace.id=$trace,user.id=alice,http.response.status_code=200,url.path=/accounts/alice/balance,http.request.method=GET,client.ip=127.0.0.1")
expects+=(--expect-access "http.request.id=logs-test-forged,http.response.status_code=401,user.id=None")  # None: no user.id at all
expects+=(--expect-access "http.response.status_code=413")
python3 "$check" lines --forbid "$work/forbidden" --since "$since" --until "$until" \
  --fluent-bit "$repo/deploy/logging/fluent-bit.conf" "$repo/deploy/logging/parsers.conf" \
  "${expects[@]}" "${files[@]}" > "$work/lines.log" 2>&1
check_run lines "$work/lines.log" $?

# ---- 5. deploy/logging, rendered.
if ! python3 -c 'import yaml' 2> /dev/null; then
  echo "python3-yaml not installed: installing Debian's python3-yaml"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-yaml > /dev/null 2>&1 ||
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-yaml > /dev/null; }
fi
python3 -c 'import yaml' 2> /dev/null || { fail "python3-yaml" "not installed"; finish; }
renders=()
# Debian's kubectl 1.20 (package kubernetes-client: kustomize v2.0.3), unpacked into the build
# tree, not installed (it would replace another kubectl).
old=$build/tools/kubernetes-client/usr/bin/kubectl
if [[ ! -x "$old" ]]; then
  mkdir -p "$work/deb" "$build/tools"
  (cd "$work/deb" && { apt-get download -qq kubernetes-client > /dev/null 2>&1 ||
                       { apt-get update -qq > /dev/null 2>&1 && apt-get download -qq kubernetes-client > /dev/null 2>&1; }; }) &&
    dpkg-deb -x "$work"/deb/kubernetes-client_*.deb "$build/tools/kubernetes-client" 2> /dev/null
fi
if [[ -x "$old" ]] && "$old" kustomize "$repo/deploy/logging" > "$work/render-v2.yaml" 2> "$work/render-v2.err"; then
  pass "kustomize v2 ($("$old" version --client --short 2>/dev/null || echo "Debian kubectl 1.20")) renders deploy/logging"
  renders+=("kustomize-v2=$work/render-v2.yaml")
else
  fail "kustomize v2 (Debian's kubectl 1.20) renders deploy/logging" "$(cat "$work/render-v2.err" 2>/dev/null || echo "apt-get download kubernetes-client failed")"
fi
# kustomize v5: the kubectl on the PATH when it has it (not a Debian package).
if command -v kubectl > /dev/null && [[ $(kubectl version --client 2>/dev/null) == *"Kustomize Version: v5"* ]]; then
  if kubectl kustomize "$repo/deploy/logging" > "$work/render-v5.yaml" 2> "$work/render-v5.err"; then
    pass "kustomize v5 ($(kubectl version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p')) renders deploy/logging"
    renders+=("kustomize-v5=$work/render-v5.yaml")
  else
    fail "kustomize v5 renders deploy/logging" "$(cat "$work/render-v5.err")"
  fi
else
  echo "NOTE: no kubectl with kustomize v5 on the PATH (none is packaged in Debian 12): checked with kustomize v2 only"
fi
if [[ ${#renders[@]} -gt 0 ]]; then
  python3 "$check" deploy "$repo/deploy/logging" "${renders[@]}" > "$work/deploy.log" 2>&1
  check_run deploy "$work/deploy.log" $?
fi

finish
