#!/usr/bin/env python3
"""Summarise bench/api results (the TSV written by lib.sh's `measure`).

usage: report.py RESULTS.tsv
Prints one row per target (medians over its runs), the ratio of envhub's
requests/s to JupyterHub's (its fastest row), and whether the targets are met:
envhub >= 30x JupyterHub's requests/s, envhub p99 < 5 ms.
Exits 1 if a run had failed requests (non-2xx or socket errors).
"""
import statistics
import sys
from collections import OrderedDict

RATIO_TARGET = 30.0
P99_TARGET_MS = 5.0


def main() -> int:
    rows = OrderedDict()  # label -> list of (rps, p99_ms, non2xx, errors, url)
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            label, _run, rps, p99, non2xx, errors, url = line.rstrip("\n").split("\t")
            rows.setdefault(label, []).append(
                (float(rps), float(p99), int(non2xx), int(errors), url)
            )
    if not rows:
        print("no results")
        return 1

    summary = OrderedDict()
    bad = False
    for label, runs in rows.items():
        summary[label] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
            len(runs),
            sum(r[2] + r[3] for r in runs),
        )
        bad |= summary[label][3] > 0

    # Baseline: the fastest JupyterHub row (its hub port, normally), so the
    # ratio never profits from the extra proxy hop.
    jh_rows = [(s[0], label) for label, s in summary.items() if label.startswith("JupyterHub")]
    jh_label = max(jh_rows)[1] if jh_rows else None
    jh = summary[jh_label] if jh_label else None

    runs_note = "median of %d runs" % max(s[2] for s in summary.values())
    print()
    print(f"{'target':<34} {'req/s':>10} {'p99 ms':>9} {'x JupyterHub':>13}  goals ({runs_note})")
    print("-" * 100)
    for label, (rps, p99, n, failed) in summary.items():
        ratio = f"{rps / jh[0]:.1f}x" if jh and jh[0] > 0 else "-"
        goals = ""
        if label.startswith("envhub"):
            checks = []
            if jh:
                ok = rps >= RATIO_TARGET * jh[0]
                checks.append(f">= {RATIO_TARGET:g}x JupyterHub: {'ok' if ok else 'MISSED'}")
            ok = p99 < P99_TARGET_MS
            checks.append(f"p99 < {P99_TARGET_MS:g} ms: {'ok' if ok else 'MISSED'}")
            goals = ", ".join(checks)
        if failed:
            goals += f"  !! {failed} failed requests: figures invalid"
        print(f"{label:<34} {rps:>10.1f} {p99:>9.2f} {ratio:>13}  {goals}")
    if len(next(iter(rows.values()))) > 1:
        print()
        print("individual runs (req/s, p99 ms):")
        for label, runs in rows.items():
            print(f"  {label:<32} " + "  ".join(f"{r[0]:.0f}/{r[1]:.2f}" for r in runs))
    print()
    if jh_label:
        print(f"ratios against: {jh_label}")
    for label, runs in rows.items():
        print(f"  {label}: GET {runs[0][4]}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
