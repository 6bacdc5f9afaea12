#!/usr/bin/env bash
# The Kubernetes manifests of deploy/k8s/ (and deploy/logging/ when it has a
# kustomization.yaml): each kustomization renders with `kubectl kustomize`, every rendered
# object validates against the Kubernetes and Prometheus Operator schemas (npm's
# kubernetes-models, offline), and our policy holds (tests/deploy/k8s_policy.mjs: probes,
# resources, security context, no secret in env or args, flags that exist, NetworkPolicies
# that let only the gateway reach balanced's API, ClusterIP for balanced, HPAs with the
# request-rate metric, PDBs, zone spread, drain timings, PodMonitor ports). Then the policy
# is fed deliberately broken copies of the renders and must fail each one, so it cannot
# pass vacuously. No cluster is needed or touched: `kubectl kustomize` only.
#
# Needs kubectl (any version with kustomize built in: 1.14+; Debian 12's kubernetes-client
# 1.20 has kustomize v2.0.3, kubectl 1.32 has v5), node and npm. Installs kubernetes-models,
# @kubernetes-models/prometheus-operator and yaml with npm into build/tools/k8s (ignored by
# git) when they are not there yet; a second run touches no network. Nothing is skipped:
# a missing tool is a failure.
# Usage: tests/deploy/k8s_test.sh          Last line: "N passed, M failed".
#   KUBECTL=/path/to/kubectl   another kubectl (e.g. an unpacked kubernetes-client 1.20)
#   K8S_TOOLS_DIR=DIR          where the npm packages go (default build/tools/k8s)
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=${K8S_TOOLS_DIR:-$repo/build/tools/k8s}
kubectl=${KUBECTL:-kubectl}
policy=$repo/tests/deploy/k8s_policy.mjs
# Pinned, so every machine validates against the same schemas. kubernetes-models 5.1.0
# declares node >= 22 but runs on Debian's node 18 and 20 (npm only warns).
packages=(kubernetes-models@5.1.0 @kubernetes-models/prometheus-operator@6.0.0 yaml@2.9.1)

work=$(mktemp -d "${TMPDIR:-/tmp}/balanced-k8s-XXXXXX")
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit
}

# 1. The tools.
if kubectl_path=$(command -v "$kubectl"); then
  version=$("$kubectl_path" version --client 2>/dev/null | tr '\n' ' ')
  pass "kubectl: $kubectl_path ($version)"
else
  fail "kubectl: '$kubectl' not found (scripts/install-deps.sh test installs Debian's kubernetes-client; or set KUBECTL)"
  finish
fi
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  fail "node and npm: not found (scripts/install-deps.sh test installs them)"
  finish
fi
installed() {  # all pinned versions present in $tools?
  local spec name want have
  for spec in "${packages[@]}"; do
    name=${spec%@*} want=${spec##*@}
    have=$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("") }' \
      "$tools/node_modules/$name/package.json" 2>/dev/null)
    [[ "$have" == "$want" ]] || return 1
  done
}
if ! installed; then
  echo "installing ${packages[*]} into $tools"
  mkdir -p "$tools" \
    && npm install --no-audit --no-fund --save-exact --loglevel=error --prefix "$tools" "${packages[@]}" > "$work/npm.log" 2>&1
  if ! installed; then
    cat "$work/npm.log"
    fail "npm install ${packages[*]} into $tools"
    finish
  fi
fi
pass "schema packages: ${packages[*]} in $tools"

# 2. Every kustomization uses only what kustomize v2 understands (a v5-only run catches
#    what Debian's kubectl 1.20 would refuse), then each renders.
mapfile -t kustomizations < <(find "$repo/deploy/k8s" -name kustomization.yaml | sort)
[[ -f "$repo/deploy/logging/kustomization.yaml" ]] && kustomizations+=("$repo/deploy/logging/kustomization.yaml")
if [[ ${#kustomizations[@]} -lt 4 ]]; then
  fail "kustomizations: found ${#kustomizations[@]} under deploy/k8s, want base, overlays/dev, overlays/production, overlays/production/migrate"
fi
run_policy() {  # run_policy ARGS...: the policy script's PASS/FAIL lines count here
  local output status line
  output=$(node "$policy" --tools "$tools" --source "$repo" "$@" 2>&1)
  status=$?
  while IFS= read -r line; do
    case "$line" in
      "PASS "*) passed=$((passed + 1)); echo "$line" ;;
      "FAIL "*) failed=$((failed + 1)); echo "$line" ;;
      *) echo "$line" ;;
    esac
  done <<< "$output"
  [[ $status -eq 0 ]] || fail "k8s_policy.mjs $1 exited $status"
}
run_policy kustomizations "${kustomizations[@]}"

# NAME DIRECTORY PROFILE (k8s_policy.mjs): what the render must satisfy.
renders=(
  "base deploy/k8s/base base"
  "dev deploy/k8s/overlays/dev dev"
  "production deploy/k8s/overlays/production production"
  "production-migrate deploy/k8s/overlays/production/migrate job"
)
[[ -f "$repo/deploy/logging/kustomization.yaml" ]] && renders+=("logging deploy/logging foreign")
for entry in "${renders[@]}"; do
  read -r name dir profile <<< "$entry"
  if "$kubectl" kustomize "$repo/$dir" > "$work/$name.yaml" 2> "$work/$name.err"; then
    # kustomize v5 warns about fields it deprecates (bases, commonLabels,
    # patchesStrategicMerge, patchesJson6902) that v2 needs; anything else is shown.
    grep -v "^# Warning: '\(bases\|commonLabels\|patchesStrategicMerge\|patchesJson6902\)' is deprecated" "$work/$name.err" | sed 's/^/    /'
    pass "$name: kubectl kustomize $dir"
    run_policy check "$name" "$work/$name.yaml" "$profile"
  else
    sed 's/^/    /' "$work/$name.err"
    fail "$name: kubectl kustomize $dir"
  fi
done

# 3. The policy catches what it must: broken copies of the dev and production renders.
if [[ -s "$work/dev.yaml" && -s "$work/production.yaml" ]]; then
  run_policy self-test "$work/dev.yaml" "$work/production.yaml"
else
  fail "self-test: the dev and production renders are missing"
fi

finish
