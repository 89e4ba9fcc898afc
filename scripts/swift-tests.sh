#!/usr/bin/env bash
# Runs the Swift tests (already built by `swift build --build-tests`) with a deadline.
#
#   scripts/swift-tests.sh [ARGS...]     e.g. --filter GatewayTests
#
# The test binary runs directly rather than under `swift test`, which holds its output back
# in large blocks: this way every line shows as it happens, and a copy goes to
# .build/test-output/swift-tests.log. A run that outlives ENVHUB_TEST_DEADLINE seconds
# (default 1200; a whole run takes a few minutes) is stopped, and the tests that started and
# never ended are named, so that a hang costs minutes and says where it is.
set -euo pipefail
cd "$(dirname "$0")/.."

deadline=${ENVHUB_TEST_DEADLINE:-1200}
export NO_COLOR=1  # plain lines, for the log and for naming the tests that never ended
binary="$(swift build --show-bin-path)/envhubPackageTests.xctest"
[ -x "$binary" ] || { echo "swift-tests: build first (swift build --build-tests)" >&2; exit 2; }
mkdir -p .build/test-output
log=.build/test-output/swift-tests.log

set +e
timeout --kill-after=10 "$deadline" "$binary" --testing-library swift-testing "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    echo "swift-tests: stopped after $deadline s; tests that started and never ended:" >&2
    # "◇ Test NAME started." and "✔ Test NAME [with N test cases] passed after …" (or ✘, failed):
    # parameterized tests' cases are left out, a test counts once.
    sed -n '/^◇ Test case /d; /^◇ Test run started/d; s/^◇ Test \(.*\) started\.$/\1/p' "$log" | sort -u >"$log.started"
    sed -n 's/^\(✔\|✘\) Test \(.*\) \(passed\|failed\) after .*/\2/p' "$log" \
        | sed 's/ with [0-9][0-9]* test cases\{0,1\}$//' | sort -u >"$log.ended"
    comm -23 "$log.started" "$log.ended" | sed 's/^/  /' >&2
    rm -f "$log.started" "$log.ended"
fi
exit "$status"
