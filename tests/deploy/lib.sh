# What the deploy test scripts share. Source it after setting `work` (a temp dir this
# script removes at exit); append every process started to `pids`. Counts PASS/FAIL lines;
# `finish` prints the closing "N passed, M failed" and exits non-zero on any failure.
passed=0 failed=0
pids=()

# Stops every process the script started, by pid (TERM, then KILL after 10 s), and
# removes its directory.
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
pass() { echo "PASS: $1"; passed=$((passed + 1)); }
fail() { echo "FAIL: $1${2:+: $2}"; failed=$((failed + 1)); }
finish() { echo "$passed passed, $failed failed"; [[ $failed -eq 0 ]]; exit $?; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
# status URL [CURL_ARGS...]: the HTTP status code, 000 when nothing answers within 10 s.
status() { local url=$1; shift; curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url" 2>/dev/null || true; }
