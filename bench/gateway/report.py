#!/usr/bin/env python3
"""Summarise a bench/gateway run: one table of every figure, then the ratios the targets are about.

usage: report.py WORK_DIR
Reads what bench/gateway/run.sh left there: wrk.tsv, wrk1.tsv and paced.tsv (lib.sh's
`measure`) with the wrk outputs in wrk/ (for p50), download.tsv, ws.tsv, hold.tsv,
count.tsv. Any of them may be missing.
Targets, for envhub: requests/s >= 1x nginx and >= 3x CHP; p99 overhead over direct <= 1 ms;
streaming >= 80% of direct; no errors.
Exits 1 if envhub or direct (the baseline) had errors.
"""
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from parse_wrk import UNITS_MS  # noqa: E402  (one unit table for every wrk parser)

ORDER = ["direct", "envhub", "nginx", "chp", "floor", "splice", "copy"]
NAMES = {"direct": "direct", "envhub": "envhub", "nginx": "nginx", "chp": "CHP", "floor": "floor",
         "splice": "splice", "copy": "copy"}
VS_NGINX, VS_CHP, P99_OVERHEAD_MS, STREAMING, ERRORS = 1.0, 3.0, 1.0, 0.80, 0


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def wrk_p50(work, label, run):
    # Named as lib.sh's `measure` names them.
    name = re.sub(r"[^A-Za-z0-9]", "_", label)
    with open(os.path.join(work, "wrk", f"{name}-{run}.txt")) as f:
        match = re.search(r"^\s+50(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$", f.read(), re.M)
    return float(match.group(1)) * UNITS_MS[match.group(2)] if match else None


def get(figures, target, key):
    return figures.get(target, {}).get(key)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def collect(work):
    """figures[target][key] -> number (None if not measured); errors[target] -> count."""
    figures, errors, notes = {}, {}, []

    def put(target, key, value):
        figures.setdefault(target, {})[key] = value

    def err(target, n):
        errors[target] = errors.get(target, 0) + n

    wrk = {}
    for label, run, rps, p99, non2xx, socket_errors, _url in rows(os.path.join(work, "wrk.tsv")):
        wrk.setdefault(label, []).append((float(rps), wrk_p50(work, label, run), float(p99)))
        err(label, int(non2xx) + int(socket_errors))
    for label, runs in wrk.items():
        put(label, "rps_runs", [r[0] for r in runs])
        put(label, "rps", median(r[0] for r in runs))
        put(label, "p50", median(r[1] for r in runs))
        put(label, "p99", median(r[2] for r in runs))
        put(label, "wrk_runs", len(runs))

    # One row per target and run: the proxy's CPU seconds and the wall time over a warm-up and
    # a run, and the machine's idle share meanwhile. Summed over the runs.
    spans = {}
    for label, cpu, wall, idle in rows(os.path.join(work, "wrk-cpu.tsv")):
        span = spans.setdefault(label, {"cpu": 0.0, "wall": 0.0, "idle": []})
        span["idle"].append(float(idle))
        if cpu == "-":
            span["cpu"] = None
        elif span["cpu"] is not None:
            span["cpu"] += float(cpu)
        span["wall"] += float(wall)
    for label, span in spans.items():
        put(label, "wrk_idle", statistics.mean(span["idle"]))
        if span["cpu"] is not None and span["wall"] > 0:
            cores = span["cpu"] / span["wall"]
            put(label, "wrk_cores", cores)
            # Requests over the same spans (warm-ups included) taken at the measured rate.
            if get(figures, label, "rps"):
                put(label, "wrk_cpu_us", cores / figures[label]["rps"] * 1e6)

    for tsv, suffix, key in [("wrk1.tsv", "-c1", "c1"), ("paced.tsv", "-paced", "paced")]:
        runs = {}
        for label, run, rps, p99, non2xx, socket_errors, _url in rows(os.path.join(work, tsv)):
            target = label.removesuffix(suffix)
            runs.setdefault(target, []).append((float(rps), wrk_p50(work, label, run), float(p99)))
            err(target, int(non2xx) + int(socket_errors))
        for target, measured in runs.items():  # medians over the runs
            put(target, f"{key}_rps", median(r[0] for r in measured))
            put(target, f"{key}_p50", median(r[1] for r in measured))
            put(target, f"{key}_p99", median(r[2] for r in measured))

    downloads = {}
    for label, _run, speed, ok, size, cpu in rows(os.path.join(work, "download.tsv")):
        good = ok == "1"
        downloads.setdefault(label, []).append(
            (float(speed) / 1e6 if good else None,
             float(cpu) / (int(size) / 2**30) if good and cpu != "-" else None))
        err(label, 0 if good else 1)
    for label, runs in downloads.items():
        put(label, "mbps", median(r[0] for r in runs))
        put(label, "mbps_runs", [r[0] for r in runs])
        put(label, "cpu_per_gib", median(r[1] for r in runs))
        put(label, "download_runs", len(runs))

    for row in rows(os.path.join(work, "ws.tsv")):
        if row[1] == "FAILED":
            err(row[0], 1)
            notes.append(f"{NAMES.get(row[0], row[0])}: the WebSocket echo client failed (see the log above)")
            continue
        label, p50, p99, count, n_errors = row
        put(label, "ws_p50", float(p50))
        put(label, "ws_p99", float(p99))
        put(label, "ws_count", int(count))
        err(label, int(n_errors))

    for row in rows(os.path.join(work, "hold.tsv")):
        label, connections, seconds, n_errors = row[:4]
        put(label, "hold", f"{connections} x {seconds} s")
        if n_errors == "FAILED":
            err(label, int(connections))
            put(label, "hold_errors", None)
            notes.append(f"{NAMES.get(label, label)}: the hold client failed (see the log above)")
            continue
        put(label, "hold_errors", int(n_errors))
        err(label, int(n_errors))
        for key, value in zip(["rss_before", "rss_open", "rss_held", "rss_after"], row[4:8]):
            put(label, key, int(value) / 1024 if value != "-" else None)
        opened, echo, dropped, close = row[8:12]
        if int(n_errors):
            notes.append(f"{NAMES.get(label, label)} hold errors: {opened} failed to open, {echo} echo "
                         f"failures, {dropped} dropped, {close} unclean closes")
    for label, requests, mallocs, retains, releases in rows(os.path.join(work, "count.tsv")):
        if not requests or int(requests) == 0:
            notes.append(f"{NAMES.get(label, label)}: no request was counted (see the log above)")
            continue
        for key, value in (("malloc", mallocs), ("retain", retains), ("release", releases)):
            put(label, f"count_{key}", int(value) / int(requests))
    return figures, errors, notes


def cell(value, fmt):
    return "-" if value is None else format(value, fmt)


def main() -> int:
    work = sys.argv[1]
    figures, errors, notes = collect(work)
    targets = [t for t in ORDER if t in figures or t in errors]
    if not targets:
        print("no results")
        return 1
    fig = lambda t, k: get(figures, t, k)  # noqa: E731
    any_of = lambda k: next((fig(t, k) for t in targets if fig(t, k) is not None), None)  # noqa: E731

    lines = [
        ("GET hello, wrk: requests/s", "rps", ",.0f"),
        ("  p50 ms", "p50", ".2f"),
        ("  p99 ms", "p99", ".2f"),
        ("  proxy CPU, cores in use", "wrk_cores", ".2f"),
        ("  proxy CPU per request, us (approx.)", "wrk_cpu_us", ".0f"),
        ("  machine CPU left idle", "wrk_idle", ".0%"),
        ("GET hello, one connection: requests/s", "c1_rps", ",.0f"),
        ("  p50 ms", "c1_p50", ".3f"),
        ("  p99 ms", "c1_p99", ".3f"),
        ("GET hello, 64 connections paced: requests/s", "paced_rps", ",.0f"),
        ("  p50 ms", "paced_p50", ".3f"),
        ("  p99 ms", "paced_p99", ".3f"),
        (f"download, median of {any_of('download_runs') or 0}: MB/s", "mbps", ",.0f"),
        ("  proxy CPU seconds per GiB", "cpu_per_gib", ".2f"),
        ("WebSocket echo round trip: p50 ms", "ws_p50", ".3f"),
        ("  p99 ms", "ws_p99", ".3f"),
        (f"WebSockets held ({any_of('hold') or '-'}): errors", "hold_errors", "d"),
        ("  proxy RSS MiB, before", "rss_before", ".1f"),
        ("  once all are open", "rss_open", ".1f"),
        ("  at the end of the hold", "rss_held", ".1f"),
        ("  10 s after closing them", "rss_after", ".1f"),
        ("work per GET (uprobes): malloc", "count_malloc", ".1f"),
        ("  swift_retain", "count_retain", ".1f"),
        ("  swift_release", "count_release", ".1f"),
    ]
    print()
    print(f"{'':<42}" + "".join(f"{NAMES[t]:>12}" for t in targets))
    print("-" * (42 + 12 * len(targets)))
    for title, key, fmt in lines:
        if all(fig(t, key) is None for t in targets):
            continue
        print(f"{title:<42}" + "".join(f"{cell(fig(t, key), fmt):>12}" for t in targets))
    print(f"{'errors, all measurements':<42}" + "".join(f"{errors.get(t, 0):>12}" for t in targets))

    # Each proxy against direct and against the others; the targets are envhub's.
    proxies = [t for t in targets if t != "direct"]
    checks = []  # (what, {proxy: text}, envhub's verdict)

    def ratio_line(what, fn, fmt, goal=None):
        values = {p: fn(p) for p in proxies}
        if all(v is None for v in values.values()):
            return  # not measured in this run
        verdict = ""
        if goal and values.get("envhub") is not None:
            verdict = f"{goal[0]}: {'met' if goal[1](values['envhub']) else 'MISSED'}"
        checks.append((what, {p: cell(v, fmt) for p, v in values.items()}, verdict))

    def div(a, b):
        return a / b if a is not None and b else None

    def sub(a, b):
        return a - b if a is not None and b is not None else None

    if "nginx" in targets:
        ratio_line("requests/s / nginx", lambda p: div(fig(p, "rps"), fig("nginx", "rps")), ".2f",
                   (f">= {VS_NGINX:g}x", lambda v: v >= VS_NGINX))
    if "chp" in targets:
        ratio_line("requests/s / CHP", lambda p: div(fig(p, "rps"), fig("chp", "rps")), ".2f",
                   (f">= {VS_CHP:g}x", lambda v: v >= VS_CHP))
    if "direct" in targets:
        ratio_line("requests/s / direct", lambda p: div(fig(p, "rps"), fig("direct", "rps")), ".2f")
        ratio_line("GET p99 over direct, 64 connections, ms", lambda p: sub(fig(p, "p99"), fig("direct", "p99")), "+.2f",
                   (f"<= {P99_OVERHEAD_MS:g} ms", lambda v: v <= P99_OVERHEAD_MS))
        ratio_line("GET p50 over direct, ms", lambda p: sub(fig(p, "p50"), fig("direct", "p50")), "+.2f")
        ratio_line("GET p99 over direct, paced, ms",
                   lambda p: sub(fig(p, "paced_p99"), fig("direct", "paced_p99")), "+.3f",
                   (f"<= {P99_OVERHEAD_MS:g} ms", lambda v: v <= P99_OVERHEAD_MS))
        ratio_line("GET p99 over direct, 1 connection, ms", lambda p: sub(fig(p, "c1_p99"), fig("direct", "c1_p99")),
                   "+.3f", (f"<= {P99_OVERHEAD_MS:g} ms", lambda v: v <= P99_OVERHEAD_MS))
        ratio_line("WebSocket p99 over direct, ms", lambda p: sub(fig(p, "ws_p99"), fig("direct", "ws_p99")), "+.3f",
                   (f"<= {P99_OVERHEAD_MS:g} ms", lambda v: v <= P99_OVERHEAD_MS))
        ratio_line("streaming / direct", lambda p: div(fig(p, "mbps"), fig("direct", "mbps")), ".0%",
                   (f">= {STREAMING:.0%}", lambda v: v >= STREAMING))
    ratio_line("errors", lambda p: errors.get(p, 0), "d", (f"= {ERRORS}", lambda v: v == ERRORS))

    print()
    print(f"{'ratios':<42}" + "".join(f"{NAMES[p]:>12}" for p in proxies) + "   envhub's target")
    print("-" * (42 + 12 * len(proxies) + 20))
    for what, values, verdict in checks:
        print(f"{what:<42}" + "".join(f"{values[p]:>12}" for p in proxies) + f"   {verdict}")
    # The runs go round the targets, so each round's runs met the same moment of the machine:
    # the ratio round by round shows how far the median ratio above can be trusted.
    if "nginx" in targets and len(fig("nginx", "rps_runs") or []) > 1:
        print()
        for p in [p for p in proxies if p != "nginx" and fig(p, "rps_runs")]:
            rounds = [a / b for a, b in zip(fig(p, "rps_runs"), fig("nginx", "rps_runs"))]
            print(f"{NAMES[p]} / nginx requests/s, round by round: " + ", ".join(f"{r:.2f}" for r in rounds)
                  + f" (median {statistics.median(rounds):.2f})")
    # Downloads go round the targets too; round by round against direct, as the target reads.
    if "direct" in targets and len(fig("direct", "mbps_runs") or []) > 1:
        print()
        for p in [p for p in proxies if fig(p, "mbps_runs")]:
            rounds = [a / b for a, b in zip(fig(p, "mbps_runs"), fig("direct", "mbps_runs"))
                      if a is not None and b]
            if rounds:
                print(f"{NAMES.get(p, p)} / direct streaming, round by round: " + ", ".join(f"{r:.0%}" for r in rounds)
                      + f" (median {statistics.median(rounds):.0%})")
    if notes:
        print()
        for note in notes:
            print("note:", note)
    versions = os.path.join(work, "versions.txt")
    if os.path.exists(versions):
        print()
        print(open(versions).read().strip())
    return 1 if errors.get("envhub", 0) or errors.get("direct", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
