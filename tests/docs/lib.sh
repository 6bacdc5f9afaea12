# Shared by the README tests (source it): a work directory removed at exit with every
# process whose pid is in `pids`, free ports, waiting for a port, failing the test.
# Sets `repo` and `build` (the BUILD_DIR given as $1) and `work`.
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=$(cd "${1:?build dir}" && pwd)
work=$(mktemp -d /tmp/balanced-readme-XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; return 1; }
fail() { echo "FAILED: $*"; echo "0 passed, 1 failed"; exit 1; }
