#!/usr/bin/env bash
# Installs, with apt-get, only the Debian packages this project needs that are missing.
# Usage: scripts/install-deps.sh build|test|bench
# Idempotent: a second run installs nothing and does not touch the network.
set -euo pipefail

build_packages=(
  cmake ninja-build ccache mold clang make pkg-config
  libboost1.81-all-dev libboost-json1.81-dev
  libsqlite3-dev libmariadb-dev libhiredis-dev libjemalloc-dev libssl-dev libspdlog-dev libfmt-dev libcli11-dev prometheus-cpp-dev
  librabbitmq-dev
)
test_packages=(googletest libgtest-dev libclang-rt-14-dev sqlite3 curl python3
               mariadb-server mariadb-client redis-server redis-tools openssl
               python3-jwt python3-cryptography  # /usr/bin/python3 mints the JWT test vectors
               nodejs npm  # npm installs @redocly/cli for tests/docs/openapi_lint.sh
               prometheus  # promtool and the server for tests/deploy/rules_test.sh, scrape_test.sh
               kubernetes-client  # kubectl kustomize for tests/deploy/k8s_test.sh (offline only)
               python3-yaml  # tests/deploy/logs_check.py reads the Fluent Bit DaemonSet
               iptables  # tests/ha/partition_test.sh drops the database's packets in a namespace
               rabbitmq-server amqp-tools)  # the AMQP relay's tests start a throwaway node
bench_packages=(nginx-light wrk haproxy valgrind)  # valgrind: bench/instructions.sh (callgrind)

wanted=("${build_packages[@]}")
case "${1:-build}" in
  build) ;;
  test) wanted+=("${test_packages[@]}") ;;
  bench) wanted+=("${test_packages[@]}" "${bench_packages[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for package in "${wanted[@]}"; do
  # An npm already on PATH will do, whoever installed it: NodeSource's nodejs, for one,
  # bundles npm (so dpkg knows no npm package) and conflicts with Debian's.
  if [[ "$package" == nodejs || "$package" == npm ]] && command -v npm >/dev/null 2>&1; then
    continue
  fi
  # Any kubectl with kustomize built in will do (Google's kubectl package, for one, which
  # conflicts with Debian's kubernetes-client over /usr/bin/kubectl).
  if [[ "$package" == kubernetes-client ]] && command -v kubectl >/dev/null 2>&1; then
    continue
  fi
  status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
