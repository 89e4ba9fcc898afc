#!/usr/bin/env python3
"""Turn `wrk --latency` output (stdin) into one tab-separated result line.

usage: parse_wrk.py LABEL RUN URL < wrk-output
prints: LABEL  RUN  requests/s  p99-ms  non-2xx-responses  socket-errors  URL
"""
import re
import sys

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def main() -> int:
    label, run, url = sys.argv[1:4]
    text = sys.stdin.read()

    rps = re.search(r"^Requests/sec:\s+([0-9.]+)", text, re.M)
    p99 = re.search(r"^\s+99(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$", text, re.M)
    if not rps or not p99:
        print("parse_wrk: no 'Requests/sec:' or '99%' line in wrk output", file=sys.stderr)
        return 1
    p99_ms = float(p99.group(1)) * UNITS_MS[p99.group(2)]

    # Failed requests would make the figures meaningless; report them so the
    # summary can flag the run.
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    n_errors = sum(int(g) for g in errors.groups()) if errors else 0

    print(
        "\t".join(
            [
                label,
                run,
                f"{float(rps.group(1)):.1f}",
                f"{p99_ms:.3f}",
                non2xx.group(1) if non2xx else "0",
                str(n_errors),
                url,
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
