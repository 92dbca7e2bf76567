#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts what the tests need, then
# runs every test of the workspace.
#
# - MongoDB: tests start their own MongoDB wire-protocol server (nx-27017, from PyPI), which
#   this script installs into .venv under the repository.
# - Redis: tests start redis-server instances of their own on free ports (the machine's own
#   Redis is never touched), so redis-server must be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

NX_VERSION=0.8.1
if [ ! -x .venv/bin/nx-27017 ]; then
  echo "== installing nx-27017 $NX_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "nx-27017==$NX_VERSION"
fi
export TIANXIA_NX27017="$PWD/.venv/bin/nx-27017"

# Tests that need Redis start redis-server instances of their own on free ports.
command -v redis-server >/dev/null || {
  echo "the tests need redis-server (install Redis)" >&2
  exit 1
}

echo "== cargo test"
cargo test --workspace --locked "$@"
