#!/usr/bin/env bash
# Debian's real Prometheus scrapes a running balanced (SQLite), a second balanced on MariaDB
# with Redis as production runs it (the MySQL-only audit and singleton metrics, the Redis
# client's; an ACL user, its password from a file) and a balance-gateway in front of the
# first (its rate limits in the same Redis), the first relaying its change feed to a webhook
# receiver (the relay metrics), with deploy/observability/rules/ loaded. After a few requests
# through the gateway (a read, a transfer, a 401, a 403, an unknown path), checks: every
# target is up; `promtool check metrics` is clean on every live /metrics; every rule
# evaluates without error; every series a rule or a dashboard panel selects exists
# (tests/deploy/promql_check.py); every dashboard query runs. Everything runs on 127.0.0.1 free ports and is stopped by pid.
# Usage: tests/deploy/scrape_test.sh BUILD_DIR          Last line: "N passed, M failed".
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # mariadbd, for a user whose PATH lacks them
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
obs=$repo/deploy/observability
work=$(mktemp -d /tmp/balanced-scrape-XXXXXX)
source "$repo/tests/deploy/lib.sh"
abort() { fail "$*"; echo "$passed passed, $failed failed"; exit 1; }
# mariadbd may take longer than lib.sh's 30 s to open its port on a busy machine.
wait_port() { for _ in $(seq 600); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }
show() { echo "--- $1"; tail -20 "$1" || true; }

for binary in balanced balance-gateway balancectl; do
  [[ -x "$build/$binary" ]] || abort "$build/$binary not built"
done
if ! command -v promtool > /dev/null || [[ ! -x /usr/bin/prometheus ]]; then
  echo "prometheus not installed: installing Debian's prometheus"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus > /dev/null
fi
[[ -x /usr/bin/prometheus ]] && command -v promtool > /dev/null || abort "Debian's prometheus is not installed"
for program in mariadbd mariadb-install-db mariadb redis-server; do
  command -v "$program" > /dev/null || abort "$program not found: run scripts/install-deps.sh test"
done

# ---- MariaDB, and balanced on it (the audit sealing job and the singleton lease run there).
mysql_port=$(free_port)
mkdir -p "$work/mysql"
mariadb-install-db --no-defaults --datadir="$work/mysql/data" --user="$(id -un)" \
  --auth-root-authentication-method=normal --skip-test-db > "$work/mysql/install.log" 2>&1 ||
  { show "$work/mysql/install.log"; abort "mariadb-install-db failed"; }
mariadbd --no-defaults --datadir="$work/mysql/data" --user="$(id -un)" --bind-address=127.0.0.1 \
  --port="$mysql_port" --socket="$work/mysql/mysqld.sock" --pid-file="$work/mysql/mysqld.pid" \
  --skip-name-resolve --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
  > "$work/mysql/mariadbd.log" 2>&1 & pids+=($!)
wait_port "$mysql_port" || { show "$work/mysql/mariadbd.log"; abort "mariadbd did not start"; }
mariadb --no-defaults -h127.0.0.1 -P"$mysql_port" -uroot -e \
  "CREATE USER 'balanced'@'127.0.0.1' IDENTIFIED BY 'secret'; GRANT ALL ON *.* TO 'balanced'@'127.0.0.1';
   CREATE DATABASE ledger CHARACTER SET utf8mb4;" || abort "cannot create the MariaDB user and database"
mysql_url="mysql://balanced:secret@127.0.0.1:$mysql_port/ledger"
"$build/balancectl" migrate --db "$mysql_url" > "$work/migrate.log" 2>&1 || { show "$work/migrate.log"; abort "balancectl migrate"; }

# ---- Redis with an ACL user (the default user off), for the cache and the rate limits.
redis_port=$(free_port)
mkdir -p "$work/redis"
echo 'r3dis-secret' > "$work/redis/password"
redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$work/redis" --save '' --appendonly no \
  --user default off --user balanced on '>r3dis-secret' '~*' '&*' '+@all' \
  > "$work/redis/redis.log" 2>&1 & pids+=($!)
wait_port "$redis_port" || { show "$work/redis/redis.log"; abort "redis-server did not start"; }
redis_flags=(--cache-user balanced --cache-password-file "$work/redis/password")

m_api=$(free_port); m_admin=$(free_port)
"$build/balanced" --listen "127.0.0.1:$m_api" --admin-listen "127.0.0.1:$m_admin" --db "$mysql_url" \
  --cache "redis://127.0.0.1:$redis_port" "${redis_flags[@]}" \
  --threads 1 --log-level warn > "$work/balanced-mysql.log" 2>&1 & pids+=($!)

# ---- A webhook receiver that answers 204 to every POST: the SQLite balanced relays its
# change feed there, so the balanced_event_relay_* series exist and count.
hook_port=$(free_port)
echo 'scrape-test-webhook-secret' > "$work/webhook-secret"
python3 -c '
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()' "$hook_port" \
  > "$work/webhook.log" 2>&1 & pids+=($!)
wait_port "$hook_port" || { show "$work/webhook.log"; abort "the webhook receiver did not start"; }

# ---- balanced on SQLite (relaying to the webhook, deciding risk rules), and the gateway
# in front of it.
echo '[{"name": "large", "when": {"amountGte": 1000000}, "then": "deny"}]' > "$work/risk.json"
s_api=$(free_port); s_admin=$(free_port)
"$build/balanced" --listen "127.0.0.1:$s_api" --admin-listen "127.0.0.1:$s_admin" \
  --db "sqlite:$work/sqlite/ledger.db" --threads 1 --log-level warn \
  --webhook-url "http://127.0.0.1:$hook_port/hooks" --webhook-secret-file "$work/webhook-secret" \
  --risk-rules "$work/risk.json" \
  > "$work/balanced-sqlite.log" 2>&1 & pids+=($!)
"$build/balancectl" keygen --alg ES256 --kid k --key-out "$work/k.pem" --jwks-out "$work/jwks.json" > /dev/null ||
  abort "balancectl keygen"
# Another key under the same kid, unknown to the gateway: its tokens fail bad_signature.
"$build/balancectl" keygen --alg ES256 --kid k --key-out "$work/other.pem" --jwks-out "$work/other.json" > /dev/null ||
  abort "balancectl keygen"
g_public=$(free_port); g_admin=$(free_port)
"$build/balance-gateway" --listen "127.0.0.1:$g_public" --admin-listen "127.0.0.1:$g_admin" \
  --upstream "http://127.0.0.1:$s_api" --jwks "$work/jwks.json" --jwt-issuer https://issuer.test \
  --jwt-audience balanced --rate-limit-store "redis://balanced@127.0.0.1:$redis_port" \
  --rate-limit-store-password-file "$work/redis/password" \
  --threads 1 --log-level warn --access-log off > "$work/gateway.log" 2>&1 & pids+=($!)
for port in "$m_api" "$m_admin"; do wait_port "$port" || { show "$work/balanced-mysql.log"; abort "balanced (MariaDB) did not start"; }; done
for port in "$s_api" "$s_admin"; do wait_port "$port" || { show "$work/balanced-sqlite.log"; abort "balanced (SQLite) did not start"; }; done
for port in "$g_public" "$g_admin"; do wait_port "$port" || { show "$work/gateway.log"; abort "balance-gateway did not start"; }; done

# ---- Traffic, so that the labelled series carry counts.
status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
for api in "$s_api" "$m_api"; do
  for account in '{"accountNumber":"alice","initialBalance":10000}' '{"accountNumber":"bob"}'; do
    [[ $(status -X POST "127.0.0.1:$api/accounts" -H 'Content-Type: application/json' -d "$account") == 201 ]] ||
      abort "creating an account on 127.0.0.1:$api"
  done
done
[[ $(status -X POST "127.0.0.1:$m_api/accounts/transactions" -H 'Content-Type: application/json' \
     -d '{"transactionId":"m-1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":5}') == 2* ]] ||
  abort "a transfer on balanced (MariaDB)"
# A debit the risk rule denies (the overdraft limit lets it pass every other check).
[[ $(status -X PATCH "127.0.0.1:$s_api/accounts/alice" -H 'Content-Type: application/json' \
     -d '{"overdraftLimit":2000000}') == 200 ]] || abort "raising alice's overdraft limit on balanced (SQLite)"
[[ $(status -X POST "127.0.0.1:$s_api/accounts/transactions" -H 'Content-Type: application/json' \
     -d '{"transactionId":"s-risk","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":1500000}') == 422 ]] ||
  abort "a transfer the risk rules deny on balanced (SQLite)"
mint() {
  "$build/balancectl" token --key "$1" --kid k --sub alice --accounts alice \
    --scope "balances:read transactions:write" --iss https://issuer.test --aud balanced
}
token=$(mint "$work/k.pem") && forged=$(mint "$work/other.pem") || abort "balancectl token"
gw=127.0.0.1:$g_public
declare -A expect=(
  [read]="200 $(status -H "Authorization: Bearer $token" "$gw/accounts/alice/balance")"
  [transfer]="201 $(status -X POST "$gw/accounts/transactions" -H "Authorization: Bearer $token" \
      -H 'Content-Type: application/json' \
      -d '{"transactionId":"g-1","sourceAccountNumber":"alice","destinationAccountNumber":"bob","amount":7}')"
  [no_token]="401 $(status "$gw/accounts/alice/balance")"
  [bad_token]="401 $(status -H "Authorization: Bearer $forged" "$gw/accounts/alice/balance")"
  [someone_else]="403 $(status -H "Authorization: Bearer $token" "$gw/accounts/bob/balance")"
  [unknown_path]="404 $(status -H "Authorization: Bearer $token" "$gw/nowhere")"
)
traffic_ok=1
for what in "${!expect[@]}"; do
  read -r want got <<< "${expect[$what]}"
  [[ "$got" == "$want" || ( "$want" == 201 && "$got" == 200 ) ]] || { fail "gateway $what: HTTP $got, expected $want"; traffic_ok=0; }
done
[[ $traffic_ok -eq 1 ]] && pass "through the gateway: a read 200, a transfer 2xx, two 401s, a 403, a 404"

# ---- promtool check metrics on every live /metrics.
for target in "balanced (SQLite) 127.0.0.1:$s_admin" "balanced (MariaDB) 127.0.0.1:$m_admin" "balance-gateway 127.0.0.1:$g_admin"; do
  address=${target##* }
  curl -sf "$address/metrics" > "$work/metrics.txt" || { fail "GET $address/metrics"; continue; }
  if promtool check metrics < "$work/metrics.txt" > "$work/lint.txt" 2>&1; then
    pass "promtool check metrics: ${target% *} /metrics is clean ($(grep -c '^# TYPE' "$work/metrics.txt") metrics)"
  else
    fail "promtool check metrics: ${target% *} /metrics:"; sed 's/^/    /' "$work/lint.txt"
  fi
done

# ---- Prometheus, 1 s scrapes of the three admin listeners, the rules loaded.
p_port=$(free_port)
rules_yaml=$(for file in "$obs"/rules/*.yaml; do echo "  - $file"; done)
cat > "$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
$rules_yaml
scrape_configs:
  - job_name: balanced
    static_configs:
      - targets: ["127.0.0.1:$s_admin", "127.0.0.1:$m_admin"]
  - job_name: balance-gateway
    static_configs:
      - targets: ["127.0.0.1:$g_admin"]
YAML
promtool check config "$work/prometheus.yml" > "$work/config.log" 2>&1 || { show "$work/config.log"; abort "promtool check config"; }
/usr/bin/prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$p_port" --log.level=warn > "$work/prometheus.log" 2>&1 & pids+=($!)
prom=http://127.0.0.1:$p_port
ready=0
for _ in $(seq 300); do
  curl -sf "$prom/-/ready" > /dev/null 2>&1 && { ready=1; break; }
  kill -0 "${pids[-1]}" 2>/dev/null || break
  sleep 0.1
done
[[ $ready -eq 1 ]] || { show "$work/prometheus.log"; abort "prometheus did not start"; }
pass "prometheus $(/usr/bin/prometheus --version 2>&1 | awk 'NR==1 {print $3}') serves on 127.0.0.1:$p_port"

targets_up() {
  curl -sf "$prom/api/v1/targets?state=active" | python3 -c '
import json, sys
targets = json.load(sys.stdin)["data"]["activeTargets"]
print(len(targets), sum(t["health"] == "up" for t in targets))
for t in targets:
    if t["health"] != "up": print("   ", t["labels"]["job"], t["scrapeUrl"], t["health"], t["lastError"], file=sys.stderr)'
}
up=""
for _ in $(seq 100); do
  up=$(targets_up 2> /dev/null || true)
  [[ "$up" == "3 3" ]] && break
  sleep 0.2
done
if [[ "$up" == "3 3" ]]; then pass "all 3 targets scraped, health up"; else targets_up || true; fail "targets up: ${up:-none} (of 3)"; fi

# Rules: all loaded, and each evaluated at least once without error.
want_rules=$(cat "$obs"/rules/*.yaml | grep -cE '^ *- (alert|record):')
rules_state() {
  curl -sf "$prom/api/v1/rules" | python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
print(len(rules), sum(r["health"] == "ok" for r in rules))
for r in rules:
    if r["health"] == "err": print("   ", r["name"], r.get("lastError"), file=sys.stderr)'
}
state=""
for _ in $(seq 50); do
  state=$(rules_state 2> /dev/null || true)
  [[ "$state" == "$want_rules $want_rules" ]] && break
  sleep 0.2
done
if [[ "$state" == "$want_rules $want_rules" ]]; then
  pass "prometheus loaded all $want_rules rules of deploy/observability/rules/ and evaluates them without error"
else
  rules_state || true; fail "rules loaded and healthy: ${state:-none} (want $want_rules $want_rules)"
fi

# The requests above, as Prometheus sees them.
value() {
  curl -sf -G "$prom/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "none")'
}
counted=""
for check in 'sum(balance_gateway_http_requests_total{route="get_balance",code="2xx"})' \
             'sum(balance_gateway_http_requests_total{route="post_transaction",code="2xx"})' \
             'sum(balance_gateway_auth_failures_total{reason="missing"})' \
             'sum(balance_gateway_auth_failures_total{reason="bad_signature"})' \
             'sum(balance_gateway_auth_forbidden_total)' \
             'sum(balanced_http_requests_total{route="post_transaction",code="2xx"})' \
             'sum(balanced_engine_commit_seconds_count)' \
             'count(balanced_singleton_leader)' \
             'sum(balanced_events_relayed_total{relay="webhook"})'; do
  got=$(value "$check" || echo none)
  [[ "$got" != none && "$got" != 0 ]] || counted+=" $check=$got"
done
if [[ -z "$counted" ]]; then pass "the requests are counted in the scraped series"; else fail "not counted:$counted"; fi

# ---- The dashboard's shape: Grafana's schema 39, the data source a variable, every panel
# on it, ids unique, panels inside the 24-column grid and not overlapping.
if python3 - "$obs/grafana/balanced.json" > "$work/dashboard.log" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
problems = []
if d.get("schemaVersion", 0) < 36: problems.append(f"schemaVersion {d.get('schemaVersion')}")
variables = {v["name"]: v for v in d.get("templating", {}).get("list", [])}
if variables.get("datasource", {}).get("type") != "datasource": problems.append("no datasource variable")
panels, cells, ids = [], {}, set()
def walk(items):
    for p in items:
        panels.append(p); walk(p.get("panels", []))
walk(d.get("panels", []))
for p in panels:
    name = p.get("title", "?")
    if p.get("id") in ids: problems.append(f"{name}: id {p.get('id')} twice")
    ids.add(p.get("id"))
    g = p.get("gridPos", {})
    if g.get("x", 0) + g.get("w", 0) > 24: problems.append(f"{name}: beyond 24 columns")
    for x in range(g.get("x", 0), g.get("x", 0) + g.get("w", 0)):
        for y in range(g.get("y", 0), g.get("y", 0) + g.get("h", 0)):
            if (x, y) in cells: problems.append(f"{name}: overlaps {cells[(x, y)]}")
            cells[(x, y)] = name
    if p.get("type") == "row": continue
    if p.get("datasource", {}).get("uid") != "${datasource}": problems.append(f"{name}: datasource not ${{datasource}}")
    if not p.get("targets"): problems.append(f"{name}: no query")
    for t in p.get("targets", []):
        if t.get("datasource", {}).get("uid") != "${datasource}": problems.append(f"{name}: a query's datasource")
print("\n".join(sorted(set(problems))) or f"{len(panels)} panels")
sys.exit(1 if problems else 0)
PY
then pass "dashboard: schema, \${datasource} on every panel and query, layout ($(cat "$work/dashboard.log"))"
else fail "dashboard:"; sed 's/^/    /' "$work/dashboard.log"
fi

# ---- Every series a rule or a panel names exists; every panel query runs.
python3 "$repo/tests/deploy/promql_check.py" "$prom" "$obs/grafana/balanced.json" > "$work/promql.log" 2>&1 ||
  echo "FAILED: promql_check.py: $(tail -1 "$work/promql.log")" >> "$work/promql.log"
cat "$work/promql.log"
passed=$((passed + $(grep -c '^ok:' "$work/promql.log" || true)))
failed=$((failed + $(grep -c '^FAILED:' "$work/promql.log" || true)))

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
