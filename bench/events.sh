#!/usr/bin/env bash
# The change feed read by one client (issue 21: GET /events serves >= 50,000 events/s to
# one reader). Usage: bench/events.sh [seconds per leg, default 10] [events, default 200000]
# One balanced on a fresh SQLite file; the events are made first by batches of 8,000
# transfers between 10 accounts (each transfer one event). Then wrk -t1 -c1
# (bench/wrk/events.lua) reads GET /events?after=N&limit=1000, each request after the
# page before's `next`, around again once caught up; events/s counts the ids the pages
# covered (gapless). Baseline in the same run: nginx serving one such page (1,000 events,
# read from balanced) as a static file to wrk -t1 -c1: what this machine moves in answers
# of that size. Prints each leg's rate, p50/p99/p99.9/max per page and CPU per event.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
events=${2:-200000}
build=${BUILD_DIR:-build}
work=$(mktemp -d /tmp/balanced-bench-XXXXXX)
pids=()
source bench/lib.sh
trap cleanup EXIT

machine_line
echo "load: wrk -t1 -c1, ${seconds}s per leg, bench/wrk/events.lua, $events events"
start_balanced_sqlite
port=$balanced_port
create_accounts "$port" 10 1000000000000
/usr/bin/python3 - "$port" "$events" <<'PY'
import json, sys, urllib.request
port, events = int(sys.argv[1]), int(sys.argv[2])
batch = 8000
for b in range((events + batch - 1) // batch):
    items = [{"transactionId": f"ev-{b}-{i}", "sourceAccountNumber": f"a{i % 10}",
              "destinationAccountNumber": f"a{(i + 1) % 10}", "amount": 1} for i in range(batch)]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/accounts/transactions/batch",
                                     data=json.dumps({"transfers": items}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request).read()
PY
last=$(curl -s "localhost:$port/events?after=$((events - 1))&limit=1000" | sed -n 's/.*"next":\([0-9]*\)}$/\1/p')
echo "events in the feed: $last"
# The baseline page: 1,000 events as balanced answers them, served by nginx from a file.
nginx_port=$(free_port)
mkdir -p "$work/nginx/www"
curl -s "localhost:$port/events?after=1000&limit=1000" > "$work/nginx/www/page.json"
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
master_process off;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_requests 100000000;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/nginx/www;
    default_type application/json;
  }
}
CONF
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" > /dev/null 2>&1 & pids+=($!)
nginx_pid=$!
wait_port "$nginx_port"
echo "page: $(wc -c < "$work/nginx/www/page.json") bytes, 1,000 events"

leg() {  # leg NAME PID URL [PATH_ONLY]
  local before after line rate
  before=$(cpu_ticks "$2")
  line=$(PATH_ONLY=${4:-} wrk -t1 -c1 -d"${seconds}s" --latency -s bench/wrk/events.lua "$3" | result /dev/stdin)
  after=$(cpu_ticks "$2")
  rate=$(field "$line" events_per_s)
  echo "$1: $line  cpu/event: $(awk -v t=$((after - before)) -v hz="$hz" -v r="$rate" -v s="$seconds" \
       'BEGIN { printf "%.2f", t / hz * 1e6 / (r * s) }')us"
}
leg "nginx (static page)" "$nginx_pid" "http://127.0.0.1:$nginx_port" /page.json
leg "balanced GET /events" "$balanced_pid" "http://127.0.0.1:$port"
kill "$balanced_pid"; wait "$balanced_pid" 2>/dev/null || true
echo "after the run: $("$build/balancectl" verify --db "sqlite:$work/ledger.db" | tail -1)"
