#!/usr/bin/env bash
# Runs the browser tests (Tests/browser/test_*.py): Selenium driving Debian's Chromium and
# chromedriver, headless, against a hub started here from .build/debug/envhub on SQLite in
# a temp dir. Screenshots go to .build/test-output/browser/. Needs `swift build` first and
# the packages of scripts/system-packages.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build/python-browser
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check selenium >&2
fi
binary=.build/debug/envhub
[ -x "$binary" ] || { echo "browser-tests: build first (swift build)" >&2; exit 2; }
output=.build/test-output/browser
mkdir -p "$output"

tmp=$(mktemp -d)
chmod 755 "$tmp"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
password="browser-admin-password"
# --stop-environments-on-exit: the desktops the tests start end with the hub.
ENVHUB_ADMIN_PASSWORD=$password ENVHUB_DATA_DIR="$tmp/data" ENVHUB_LOG_LEVEL=info \
    "$binary" serve --port "$port" --stop-environments-on-exit >"$output/envhub.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$tmp"' EXIT

deadline=$(( $(date +%s) + 60 ))
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$output/envhub.log" >&2; echo "browser-tests: envhub did not start" >&2; exit 1; }
    sleep 0.1
done

status=0
for test in Tests/browser/test_*.py; do
    # SE_OFFLINE: Selenium must not try to download a driver; Debian's is given explicitly.
    SE_OFFLINE=true HUB_URL="http://127.0.0.1:$port" ADMIN_PASSWORD=$password OUTPUT_DIR="$output" \
        "$venv/bin/python" "$test" || status=1
done
[ $status -eq 0 ] || { echo "browser-tests: failed; hub log in $output/envhub.log" >&2; }
exit $status
