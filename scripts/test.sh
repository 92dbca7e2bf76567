#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts what the tests need, then
# runs every test of the workspace.
#
# - MongoDB: tests start their own MongoDB wire-protocol server (nx-27017, from PyPI), which
#   this script installs into .venv under the repository.
# - Redis: tests use TIANXIA_TEST_REDIS_URL (default redis://127.0.0.1:6379). If nothing
#   answers there, this script starts a private redis-server on a free port for the run and
#   stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

NX_VERSION=0.8.1
if [ ! -x .venv/bin/nx-27017 ]; then
  echo "== installing nx-27017 $NX_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "nx-27017==$NX_VERSION"
fi
export TIANXIA_NX27017="$PWD/.venv/bin/nx-27017"

redis_answers() {
  local hostport=${1#redis://}
  hostport=${hostport%/}
  (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null
}

export TIANXIA_TEST_REDIS_URL="${TIANXIA_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
redis_pid=""
redis_dir=""
cleanup() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  if [ -n "$redis_dir" ]; then rm -rf "$redis_dir"; fi
}
trap cleanup EXIT
if ! redis_answers "$TIANXIA_TEST_REDIS_URL"; then
  command -v redis-server >/dev/null || {
    echo "no Redis at $TIANXIA_TEST_REDIS_URL and no redis-server to start one" >&2
    exit 1
  }
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis_dir=$(mktemp -d)
  echo "== starting a private redis-server on port $port"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$redis_dir" >"$redis_dir/log" 2>&1 &
  redis_pid=$!
  export TIANXIA_TEST_REDIS_URL="redis://127.0.0.1:$port"
  for _ in $(seq 1 100); do redis_answers "$TIANXIA_TEST_REDIS_URL" && break; sleep 0.1; done
fi

echo "== cargo test"
cargo test --workspace --locked "$@"
