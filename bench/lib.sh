# Helpers the bench scripts share. Source it; the caller sets `work` and `pids`.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 600); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }
result() { grep '^RESULT' "$1" | sed 's/RESULT //'; }          # a bench output's RESULT fields
field() { sed -n "s/.*$2=\([0-9.]*\).*/\1/p" <<< "$1"; }      # one field of them
# Stops every process the script started (by pid) and removes its directory.
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
machine_line() {
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME"), $(uname -r)"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
}
# create_accounts PORT COUNT BALANCE: accounts a0..a<COUNT-1> on the balanced at PORT, each
# with BALANCE, over 8 kept-alive connections (directly, not through a proxy).
create_accounts() {
  python3 - "$@" <<'EOF'
import concurrent.futures, http.client, json, sys
port, n, balance, clients = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), 8
def create(first):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(first, n, clients):
        body = json.dumps({"accountNumber": f"a{i}", "initialBalance": balance})
        conn.request("POST", "/accounts", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 201:
            raise SystemExit(f"POST /accounts a{i}: HTTP {response.status}")
with concurrent.futures.ThreadPoolExecutor(clients) as pool:
    list(pool.map(create, range(clients)))
EOF
}
