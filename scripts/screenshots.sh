#!/usr/bin/env bash
# Takes the README's pictures of the web page: docs/images/map.png (the 190 scenario after a
# few game days, in headless Chromium) and docs/images/battle.png (from the page test, which
# fights a battle at a walled city). Needs what scripts/test.sh installs (chromium and
# chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/docs/images"
mkdir -p "$out"
shots=$(mktemp -d)
data=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  rm -rf "$shots" "$data"
}
trap cleanup EXIT

cargo build --release --locked
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${CARGO_TARGET_DIR:-target}/release/tianxia" serve --bind "127.0.0.1:$port" --data-dir "$data/data" --speed 2400 \
  >"$data/serve.log" 2>&1 &
server=$!
for _ in $(seq 1 120); do
  curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
  sleep 1
done
sleep 30 # a few game days: marches under way
chromium=/usr/lib/chromium/chromium
[ -x "$chromium" ] || chromium=chromium
"$chromium" --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,800 \
  --virtual-time-budget=8000 --screenshot="$out/map.png" "http://127.0.0.1:$port/" >/dev/null 2>&1

TIANXIA_SCREENSHOTS="$shots" \
  cargo test --locked --test e2e -- page::the_page_shows_the_world_live_and_plays_on_serve --exact
cp "$shots/battle.png" "$out/battle.png"
ls -l "$out/map.png" "$out/battle.png"
