#!/usr/bin/env bash
# Runs the browser tests (Tests/browser/test_*.py): Selenium driving Debian's Chromium and
# chromedriver, headless, against a hub started here from .build/debug/envhub on SQLite in
# a temp dir; then Tests/browser/admin_kept_out.py against a second hub started with
# --no-admin-app-access, and Tests/browser/app_origins.py against a third that serves users'
# apps on origins of their own (--apps-url http://localhost:PORT, where Chromium itself maps
# *.localhost to loopback). Screenshots go to .build/test-output/browser/. Needs `swift build`
# first and the packages of scripts/system-packages.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.build/python-browser
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check selenium >&2
fi
output=.build/test-output/browser
mkdir -p "$output"
# shellcheck source=scripts/test-hub.sh
source scripts/test-hub.sh
password="browser-admin-password"
# --stop-environments-on-exit: the desktops the tests start end with the hub.
start_test_hub browser-tests "$password" "$output/envhub.log" info --stop-environments-on-exit

status=0
for test in Tests/browser/test_*.py; do
    # SE_OFFLINE: Selenium must not try to download a driver; Debian's is given explicitly.
    # Each file takes well under a minute; ten is a hang, stopped so that CI's time is not lost.
    SE_OFFLINE=true HUB_URL="http://127.0.0.1:$port" ADMIN_PASSWORD=$password OUTPUT_DIR="$output" \
        timeout --kill-after=10 600 "$venv/bin/python" "$test" || { echo "browser-tests: $test failed (status $?)" >&2; status=1; }
done
# A second hub that keeps admins out of users' apps, for the test of that setting alone.
start_test_hub browser-tests "$password" "$output/envhub-admin-kept-out.log" info --stop-environments-on-exit --no-admin-app-access
SE_OFFLINE=true HUB_URL="http://127.0.0.1:$port" ADMIN_PASSWORD=$password OUTPUT_DIR="$output" \
    timeout --kill-after=10 600 "$venv/bin/python" Tests/browser/admin_kept_out.py \
    || { echo "browser-tests: Tests/browser/admin_kept_out.py failed (status $?)" >&2; status=1; }
# A third hub that serves each user's apps on an origin of their own, alice's at
# http://alice.localhost:PORT, signed in there through the hub at http://127.0.0.1:PORT.
start_test_hub browser-tests "$password" "$output/envhub-app-origins.log" info --stop-environments-on-exit \
    --apps-url "http://localhost:{port}" --public-url "http://127.0.0.1:{port}"
SE_OFFLINE=true HUB_URL="http://127.0.0.1:$port" ADMIN_PASSWORD=$password OUTPUT_DIR="$output" \
    timeout --kill-after=10 600 "$venv/bin/python" Tests/browser/app_origins.py \
    || { echo "browser-tests: Tests/browser/app_origins.py failed (status $?)" >&2; status=1; }
[ $status -eq 0 ] || { echo "browser-tests: failed; hub logs in $output/" >&2; }
exit $status
