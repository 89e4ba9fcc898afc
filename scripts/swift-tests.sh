#!/usr/bin/env bash
# Runs the Swift tests (already built by `swift build --build-tests`) with a deadline.
#
#   scripts/swift-tests.sh [ARGS...]     e.g. --filter GatewayTests
#
# The test binary runs directly rather than under `swift test`, which holds its output back
# in large blocks: this way every line shows as it happens, and a copy goes to
# .build/test-output/swift-tests.log. A run that outlives ENVHUB_TEST_DEADLINE seconds
# (default 600; a whole run takes a few minutes) is stopped: first its threads' stacks, the
# test PostgreSQL's busy sessions and the tests' unfinished steps are printed, then the tests
# that started and never ended are named, so that a hang costs minutes and says where it is.
#
# Everything the tests make goes under one directory of the run's own (TMPDIR: Foundation's
# temporaryDirectory follows it). Environments run in process groups of their own, out of reach
# of the test binary's end, so a run stopped at the deadline, or a test that failed before it
# stopped its environments, would leave them running; on the way out, every process working in
# that directory is named and stopped, then the directory goes.
set -euo pipefail
cd "$(dirname "$0")/.."

deadline=${ENVHUB_TEST_DEADLINE:-600}
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

# What a hung run was doing, printed before it is stopped: every thread's stack (a test
# awaiting something that never comes shows as idle threads; a blocked one shows where), what
# the test PostgreSQL's sessions were doing or waiting for, and what each test hub and test
# database was doing, by the tests' own account (printed by the run on SIGUSR1).
diagnose() {
    local pid=$1
    echo "swift-tests: the run outlived $deadline s; its threads:" >&2
    timeout 120 gdb -p "$pid" -batch -nx -ex 'thread apply all bt 25' 2>/dev/null \
        | grep -E '^(Thread|#)' | cut -c1-300 >&2 || echo "swift-tests: gdb could not read them" >&2
    if [ -n "${ENVHUB_TEST_POSTGRES_ADMIN_URL:-}" ] && command -v psql >/dev/null 2>&1; then
        echo "swift-tests: the test PostgreSQL's sessions that were not idle, and locks not granted:" >&2
        timeout 30 psql "$ENVHUB_TEST_POSTGRES_ADMIN_URL" -X -q -P pager=off >&2 <<'SQL' || true
SELECT pid, datname, state, wait_event_type || ':' || wait_event AS waiting_on,
       now() - xact_start AS in_transaction_for, left(query, 100) AS query
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND state <> 'idle' AND pid <> pg_backend_pid() ORDER BY xact_start;
SELECT l.pid, l.locktype, l.mode, l.relation::regclass, a.datname FROM pg_locks l
JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted;
SQL
    fi
    # Last, the tests' own account of their unfinished steps (Tests/Support/TestProgress.swift).
    kill -USR1 "$pid" 2>/dev/null || return 0
    local until=$((SECONDS + 5))
    while ! grep -q '^test progress:' "$log" && [ "$SECONDS" -lt "$until" ]; do sleep 0.2; done
}

rm -f "$log.deadline"
set +e
"$binary" --testing-library swift-testing "$@" > >(tee "$log") 2>&1 &
tests=$!
# The deadline: a watchdog that diagnoses the run, then stops it (TERM, then KILL).
(
    end=$((SECONDS + deadline))
    while kill -0 "$tests" 2>/dev/null; do
        if [ "$SECONDS" -ge "$end" ]; then
            touch "$log.deadline"
            diagnose "$tests"
            kill -TERM "$tests" 2>/dev/null
            end=$((SECONDS + 10))
            while kill -0 "$tests" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
            kill -KILL "$tests" 2>/dev/null
            exit 0
        fi
        sleep 1
    done
) &
watchdog=$!
wait "$tests"
status=$?
kill "$watchdog" 2>/dev/null
wait
set -e
if [ -e "$log.deadline" ]; then
    rm -f "$log.deadline"
    [ "$status" -ne 0 ] || status=124
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
