#!/usr/bin/env bash
# Lints docs/openapi.yaml with @redocly/cli (rules: redocly.yaml at the repository root).
# Installs the CLI with npm into build/tools (ignored by git) when it is not there yet;
# a second run touches no network. Any error or warning fails, and so does a missing npm
# or a failed install: nothing here is skipped.
# Usage: tests/docs/openapi_lint.sh   (from anywhere; REDOCLY_TOOLS_DIR overrides build/tools)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=${REDOCLY_TOOLS_DIR:-$root/build/tools}
# 1.34.21 is not installable: it needs @redocly/respect-core@1.34.21, which the registry
# does not have. Pinned exactly so every machine lints with the same rules.
version=1.34.20
redocly=$tools/node_modules/.bin/redocly

finish() {  # finish STATUS MESSAGE
  [[ -n "${2:-}" ]] && echo "openapi_lint: $2" >&2
  if [[ $1 -eq 0 ]]; then echo "1 passed, 0 failed"; else echo "0 passed, 1 failed"; fi
  exit "$1"
}

if [[ ! -x "$redocly" ]]; then
  command -v npm >/dev/null 2>&1 || finish 1 "npm not found (scripts/install-deps.sh test installs it)"
  echo "installing @redocly/cli@$version into $tools"
  mkdir -p "$tools" || finish 1 "cannot create $tools"
  npm install --no-audit --no-fund --save-exact --prefix "$tools" "@redocly/cli@$version" \
    || finish 1 "npm install of @redocly/cli@$version failed"
  [[ -x "$redocly" ]] || finish 1 "npm install left no $redocly"
fi

installed=$("$redocly" --version 2>/dev/null) || finish 1 "$redocly does not run"
[[ "$installed" == 1.* ]] || finish 1 "@redocly/cli $installed in $tools, want major 1 ($version)"

cd "$root" || finish 1 "cannot cd to $root"
# stylish: one line per problem, then the totals. redocly exits 0 when there are only
# warnings, so they are looked for in its output too, and so are problems silenced by a
# .redocly.lint-ignore.yaml.
output=$(NO_COLOR=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true "$redocly" lint --config redocly.yaml --format stylish docs/openapi.yaml 2>&1)
status=$?
printf '%s\n' "$output"
[[ $status -eq 0 ]] || finish 1 "redocly lint exited $status"
if grep -Eq '^[[:space:]]+[0-9]+:[0-9]+[[:space:]]+(error|warning)' <<<"$output" \
   || grep -Eq 'You have [0-9]+ warning|explicitly ignored' <<<"$output"; then
  finish 1 "redocly lint reported problems"
fi
grep -q 'Your API description is valid' <<<"$output" || finish 1 "no success line from redocly lint"
finish 0
