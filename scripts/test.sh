#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs and starts what the tests need, then
# runs every test of the workspace.
#
# - MongoDB: tests start their own MongoDB wire-protocol server (nx-27017, from PyPI), which
#   this script installs into .venv under the repository.
# - The API fuzzer: Schemathesis (PyPI), into the same .venv.
# - Redis: tests start redis-server instances of their own on free ports (the machine's own
#   Redis is never touched), so redis-server must be installed.
# - promtool (Debian's prometheus package, installed with apt if missing) checks and tests
#   the alerting rules.
# - Chromium and its WebDriver (Debian's chromium and chromium-driver, installed with apt if
#   missing) for the tests of the web page.
set -euo pipefail
cd "$(dirname "$0")/.."

NX_VERSION=0.8.1
if [ ! -x .venv/bin/nx-27017 ]; then
  echo "== installing nx-27017 $NX_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "nx-27017==$NX_VERSION"
fi
export TIANXIA_NX27017="$PWD/.venv/bin/nx-27017"

# The API fuzzer of the e2e tests (tests/e2e/openapi.rs).
SCHEMATHESIS_VERSION=4.32.5
if [ ! -x .venv/bin/schemathesis ] || ! .venv/bin/schemathesis --version | grep -q "$SCHEMATHESIS_VERSION"; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
export TIANXIA_SCHEMATHESIS="$PWD/.venv/bin/schemathesis"

# The OpenAPI document's validator (tests/e2e/openapi.rs).
VALIDATOR_VERSION=0.9.0
if [ ! -x .venv/bin/openapi-spec-validator ]; then
  echo "== installing openapi-spec-validator $VALIDATOR_VERSION into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check "openapi-spec-validator==$VALIDATOR_VERSION"
fi
export TIANXIA_OPENAPI_VALIDATOR="$PWD/.venv/bin/openapi-spec-validator"

# Tests that need Redis start redis-server instances of their own on free ports.
command -v redis-server >/dev/null || {
  echo "the tests need redis-server (install Redis)" >&2
  exit 1
}

# The alerting rules (ops/prometheus) are checked with promtool, from Debian's prometheus
# package (installed here if missing; nothing of it is started).
if ! command -v promtool >/dev/null; then
  echo "== installing promtool (the prometheus package)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends prometheus >/dev/null; } \
    || { echo "cannot install promtool (apt-get install prometheus)" >&2; exit 1; }
fi
# The page tests (tests/e2e/page.rs) drive a real headless Chromium over WebDriver: Debian's
# chromium and chromium-driver, installed here if missing (nothing is downloaded at test time).
if ! command -v chromedriver >/dev/null; then
  echo "== installing chromium and chromium-driver"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null \
    || { $SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null; } \
    || { echo "cannot install chromium and chromium-driver with apt-get" >&2; exit 1; }
fi

echo "== alerting rules"
(cd ops/prometheus && promtool check rules tianxia-alerts.yml && promtool test rules tianxia-alerts.test.yml)

echo "== cargo test"
cargo test --workspace --locked "$@"
