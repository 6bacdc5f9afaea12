#!/usr/bin/env bash
# The Prometheus rules of deploy/observability/: promtool checks them and runs their unit
# tests; every alert carries severity, summary, description and a runbook_url whose anchor
# docs/OPERATIONS.md has, and is tested once firing and once quiet; the PrometheusRule in
# deploy/k8s/base/monitoring.yaml is exactly what render-prometheusrule.sh makes of the rule
# files. Installs Debian's prometheus (for promtool) when it is missing.
# Usage: tests/deploy/rules_test.sh          Last line: "N passed, M failed".
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
obs=$repo/deploy/observability
work=$(mktemp -d /tmp/balanced-rules-XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAILED: $*"; }

if ! command -v promtool > /dev/null; then
  echo "promtool not found: installing Debian's prometheus"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus > /dev/null
fi
command -v promtool > /dev/null || { fail "promtool still missing"; echo "$passed passed, $failed failed"; exit 1; }

shopt -s nullglob
rule_files=("$obs"/rules/*.yaml)
test_files=("$obs"/tests/*.yaml)
[[ ${#rule_files[@]} -gt 0 ]] || fail "no rule files in deploy/observability/rules/"
[[ ${#test_files[@]} -gt 0 ]] || fail "no test files in deploy/observability/tests/"

# 1. Syntax, PromQL, templates.
if promtool check rules "${rule_files[@]}" > "$work/check.log" 2>&1; then
  pass "promtool check rules: $(grep -o '[0-9]* rules found' "$work/check.log" | awk '{n += $1} END {print n}') rules"
else
  cat "$work/check.log"; fail "promtool check rules"
fi

# 2. Every alert: severity critical|warning, summary, description, runbook_url to an anchor
#    of docs/OPERATIONS.md (GitHub's heading ids: lower case, punctuation dropped, - for space).
anchors=$(grep -E '^#{1,6} ' "$repo/docs/OPERATIONS.md" | sed -E 's/^#+ +//' | tr 'A-Z' 'a-z' |
          sed -E 's/[^a-z0-9 _-]//g; s/ /-/g')
awk '
  function flush() {
    if (alert != "") print alert "\t" sev "\t" summary "\t" desc "\t" runbook
    alert = ""; sev = ""; summary = 0; desc = 0; runbook = ""
  }
  /^ *- (alert|record|name):/ { flush() }
  /^ *- alert:/ { alert = $3 }
  alert != "" && /^ +severity:/ { sev = $2 }
  alert != "" && /^ +summary:/ { summary = 1 }
  alert != "" && /^ +description:/ { desc = 1 }
  alert != "" && /^ +runbook_url:/ { runbook = $2 }
  END { flush() }' "${rule_files[@]}" > "$work/alerts.tsv"
alerts=$(cut -f1 "$work/alerts.tsv")
[[ -n "$alerts" ]] || fail "no alerts found in the rule files"
bad_meta=0
while IFS=$'\t' read -r alert sev summary desc runbook; do
  problem=""
  [[ "$sev" == critical || "$sev" == warning ]] || problem+=" severity '$sev' (critical or warning)"
  [[ "$summary" == 1 ]] || problem+=" no summary"
  [[ "$desc" == 1 ]] || problem+=" no description"
  if [[ "$runbook" != https://*/docs/OPERATIONS.md#* ]]; then
    problem+=" runbook_url '$runbook' is not docs/OPERATIONS.md#ANCHOR"
  elif ! grep -qxF -- "${runbook#*#}" <<< "$anchors"; then
    problem+=" runbook_url anchor #${runbook#*#} is no heading of docs/OPERATIONS.md"
  fi
  if [[ -n "$problem" ]]; then fail "$alert:$problem"; bad_meta=1; fi
done < "$work/alerts.tsv"
[[ $bad_meta -eq 1 ]] ||
  pass "$(wc -l < "$work/alerts.tsv") alerts carry severity, summary, description and a runbook anchor in docs/OPERATIONS.md"

# 3. Every alert has a unit test where it fires and one where it must stay quiet.
awk '
  /^ *alertname:/ { name = $2 }
  /^ *exp_alerts: *\[\]/ { quiet[name] = 1; next }
  /^ *exp_alerts: *$/ { fires[name] = 1 }
  END { for (n in fires) print n "\tfires"; for (n in quiet) print n "\tquiet" }' "${test_files[@]}" > "$work/cases.tsv"
untested=""
for alert in $alerts; do
  grep -qxF "$alert"$'\tfires' "$work/cases.tsv" || untested+=" $alert(no firing case)"
  grep -qxF "$alert"$'\tquiet' "$work/cases.tsv" || untested+=" $alert(no quiet case)"
done
for name in $(cut -f1 "$work/cases.tsv" | sort -u); do
  grep -qxF "$name" <<< "$alerts" || untested+=" $name(tested but no such alert)"
done
if [[ -z "$untested" ]]; then
  pass "every alert has a firing and a quiet unit test"
else
  fail "unit tests missing:$untested"
fi

# 4. The unit tests.
for file in "${test_files[@]}"; do
  if promtool test rules "$file" > "$work/test.log" 2>&1; then
    pass "promtool test rules $(basename "$file"): $(grep -c '^  - name:' "$file") tests"
  else
    cat "$work/test.log"; fail "promtool test rules $(basename "$file")"
  fi
done

# 5. The PrometheusRule is what the generator makes of the rule files, byte for byte ...
if "$obs/render-prometheusrule.sh" --check > "$work/render.log" 2>&1; then
  pass "deploy/k8s/base/monitoring.yaml's PrometheusRule matches deploy/observability/rules/"
else
  cat "$work/render.log"; fail "deploy/k8s/base/monitoring.yaml is out of date (run deploy/observability/render-prometheusrule.sh)"
fi
# ... and its spec.groups, taken back out, is a rule file promtool reads with the same rules.
awk '/^kind: PrometheusRule$/ {doc = 1} doc && /^  groups:$/ {print "groups:"; on = 1; next}
     on && /^---/ {exit} on {sub(/^  /, ""); print}' "$repo/deploy/k8s/base/monitoring.yaml" > "$work/extracted.yaml"
want=$(grep -cE '^ *- (alert|record):' "${rule_files[@]/#/}" | awk -F: '{n += $NF} END {print n}')
if promtool check rules "$work/extracted.yaml" > "$work/extracted.log" 2>&1 &&
   grep -q "SUCCESS: $want rules found" "$work/extracted.log"; then
  pass "the PrometheusRule's spec.groups passes promtool check rules ($want rules)"
else
  cat "$work/extracted.log"; fail "the PrometheusRule's spec.groups (expected $want rules)"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
