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
#
# Everything the tests make goes under one directory of the run's own (TMPDIR: Foundation's
# temporaryDirectory follows it). Environments run in process groups of their own, out of reach
# of the test binary's end, so a run stopped at the deadline, or a test that failed before it
# stopped its environments, would leave them running; on the way out, every process working in
# that directory is named and stopped, then the directory goes.
set -euo pipefail
cd "$(dirname "$0")/.."

deadline=${ENVHUB_TEST_DEADLINE:-1200}
export NO_COLOR=1  # plain lines, for the log and for naming the tests that never ended
binary="$(swift build --show-bin-path)/envhubPackageTests.xctest"
[ -x "$binary" ] || { echo "swift-tests: build first (swift build --build-tests)" >&2; exit 2; }
mkdir -p .build/test-output
log=.build/test-output/swift-tests.log

scratch=$(mktemp -d "${TMPDIR:-/tmp}/envhub-tests.XXXXXX")
chmod 755 "$scratch"  # as a directory of /tmp's own would be: the data template's PostgreSQL runs as postgres
# The processes whose working directory is in the run's directory.
leftovers() {
    local proc cwd
    for proc in /proc/[0-9]*; do
        cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
        case "$cwd/" in "$scratch"/*) echo "${proc#/proc/}" ;; esac
    done
}
stop_leftovers() {
    local pids
    pids=$(leftovers)
    if [ -n "$pids" ]; then
        echo "swift-tests: the tests left these processes running; stopping them:" >&2
        for pid in $pids; do
            echo "  $pid $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-150)" >&2
        done
        kill -TERM $pids 2>/dev/null || true
        local deadline=$((SECONDS + 10))
        while [ -n "$(leftovers)" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        pids=$(leftovers)
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
    fi
    rm -rf "$scratch"
}
trap stop_leftovers EXIT
export TMPDIR=$scratch

set +e
timeout --kill-after=10 "$deadline" "$binary" --testing-library swift-testing "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    # "◇ Test NAME started." and "✔ Test NAME [with N test cases] passed after …" (or ✘, failed):
    # parameterized tests' cases are left out, a test counts once.
    sed -n '/^◇ Test case /d; /^◇ Test run started/d; s/^◇ Test \(.*\) started\.$/\1/p' "$log" | sort -u >"$log.started"
    sed -n 's/^\(✔\|✘\) Test \(.*\) \(passed\|failed\) after .*/\2/p' "$log" \
        | sed 's/ with [0-9][0-9]* test cases\{0,1\}$//' | sort -u >"$log.ended"
    unended=$(comm -23 "$log.started" "$log.ended")
    rm -f "$log.started" "$log.ended"
    if [ -n "$unended" ]; then
        echo "swift-tests: stopped after $deadline s; tests that started and never ended:" >&2
        echo "$unended" | sed 's/^/  /' >&2
    else
        # The binary cancels what runs when it is told to stop; those tests show as failed above.
        echo "swift-tests: stopped after $deadline s; the tests still running then were cancelled (failed above)" >&2
    fi
fi
exit "$status"
