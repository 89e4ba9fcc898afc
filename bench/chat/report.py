#!/usr/bin/env python3
"""Summarise a bench/chat run: the figures, then the three targets with met/MISSED.

usage: report.py OUT_DIR
Reads what bench/chat/chat_bench.py left there: live.json, idle.json (either may be missing),
versions.txt. Targets (issue 5, on 2 cores): delivery p99 <= 50 ms, 0 lost, <= 30 KB of hub
RSS per idle connection (kB as /proc reports them: 1,024 bytes).
Exits 1 if sockets failed to open, a send was answered with an error frame or a client produced nothing.
"""
import json
import os
import sys

P99_MS, LOST, KB_PER_IDLE = 50.0, 0, 30.0


def load(directory, name):
    path = os.path.join(directory, name)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def mib(kb):
    return "-" if kb is None else f"{kb / 1024:.1f}"


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def main() -> int:
    directory = sys.argv[1]
    live, idle = load(directory, "live.json"), load(directory, "idle.json")
    if live is None and idle is None:
        print("no results (the clients failed; see the log above)")
        return 1
    rows, targets, notes = [], [], []
    failed = False

    if live:
        lat = live["latency_ms"]
        workers = [c for c in live["worker_cores"] if c is not None]
        closed = live["closed_by_hub"]
        rows += [
            ("live: subscribers (client processes in C or Python, niceness)",
             f"{live['opened']:,} of {live['subscribers']:,} ({live['procs']} in {live.get('client', 'python')}, {live.get('nice', 0)})"),
            ("messages sent / acknowledged by the end", f"{live['sent']:,} / {live['acked']:,}"),
            ("messages/s achieved (asked)", f"{live['rate_achieved']:.1f} ({live['rate']:g})"),
            ("deliveries received / expected", f"{live['received']:,} / {live['deliveries_expected']:,}"),
            ("latency p50 / p90 ms", f"{fmt(lat['p50'], '.2f')} / {fmt(lat['p90'], '.2f')}"),
            ("latency p99 / p99.9 / max ms", f"{fmt(lat['p99'], '.2f')} / {fmt(lat['p999'], '.2f')} / {fmt(lat['max'], '.1f')}"),
            ("  p99 per client process ms", " / ".join(f"{v:.1f}" for v in live["worker_p99_ms"])),
            ("lost (subscribers missing any)", f"{live['lost']:,} ({live['subscribers_losing']:,})"),
            ("closed by the hub", ", ".join(f"{n} x {code}" for code, n in closed.items()) or "none"),
            ("duplicates / out of order / unexpected", f"{live['duplicates']} / {live['disordered']} / {live['unexpected']}"),
            ("acks stored out of send order", f"{live['stored_out_of_send_order']}"),
            ("send -> ack p50 / p99 ms", f"{live['ack_ms']['p50']:.2f} / {live['ack_ms']['p99']:.2f}"),
            ("hub CPU while sending, cores", fmt(live["hub_cores"], ".2f")),
            ("  per delivery (sending + drain), us", fmt(live.get("hub_cpu_us_per_delivery"), ".1f")),
            ("client CPU, cores: workers (sum, max)", f"{sum(workers):.2f}, {max(workers, default=0):.2f} "
                                                      f"(of 1 each); sender {fmt(live['sender_cores'], '.2f')}"),
            ("  client workers per frame, us", fmt(live.get("client_cpu_us_per_frame"), ".1f")),
            ("machine CPU left idle", fmt(live["machine_idle"], ".0%")),
            ("hub RSS MiB: before / subscribed / end", f"{mib(live['hub_rss_before_kb'])} / "
                                                       f"{mib(live['hub_rss_subscribed_kb'])} / {mib(live['hub_rss_end_kb'])}"),
        ]
        targets.append(("delivery latency p99", f"{lat['p99']:.2f} ms", f"<= {P99_MS:g} ms", lat["p99"] <= P99_MS))
        targets.append(("lost messages", f"{live['lost']:,}", f"= {LOST}", live["lost"] == LOST and live["opened"] > 0))
        if live["open_failed"] or live["error_frames"]:
            failed = True
            notes.append(f"live: {live['open_failed']} sockets failed to open, {live['error_frames']} error frames "
                         f"answered sends {live['first_error_frames']}")
        if live["unacked"]:
            notes.append(f"live: {live['unacked']:,} sends were not acknowledged {live['drain']:g} s after the last "
                         "send (stored later, or never): the hub fell behind; they do not count as lost")
        if live["late_sends"]:
            notes.append(f"live: {live['late_sends']} sends went out more than 5 ms after their time "
                         "(the sender waited for a CPU)")
        if max(workers, default=0) > 0.9:
            notes.append("live: a client process used more than 0.9 of a core: the clients, not only the hub, "
                         "set the latency")
        if live["machine_idle"] < 0.05:
            notes.append("live: the machine had under 5% CPU idle: hub and clients compete for the cores")

    if idle:
        kb = idle.get("kb_per_connection")
        rows += [
            ("idle: sockets open (failed), client processes", f"{idle['opened']:,} ({idle['open_failed']}), {idle['procs']}"),
            ("  each subscribed to the room", "yes" if idle["subscribed"] else "no (one ping each)"),
            ("  opened in, s", f"{idle['open_seconds']:.1f} (hub CPU {idle['hub_cpu_open_s']:.1f} s)"),
            ("hub RSS MiB: before / open / 10 s after closing", f"{mib(idle['hub_rss_before_kb'])} / {mib(idle['hub_rss_open_kb'])} / "
                                                           f"{mib(idle['hub_rss_closed_kb'])}"),
            ("  per idle connection, kB", fmt(kb, ".1f")),
            ("hub CPU with them open, cores", fmt(idle["hub_cores_idle"], ".3f")),
            ("closed by the hub", ", ".join(f"{n} x {code}" for code, n in idle["closed_by_hub"].items()) or "none"),
        ]
        if kb is not None:
            targets.append(("hub RSS per idle connection", f"{kb:.1f} kB", f"<= {KB_PER_IDLE:g} kB", kb <= KB_PER_IDLE))
        if idle["open_failed"] or not idle["opened"]:
            failed = True
            notes.append(f"idle: {idle['open_failed']} sockets failed to open")

    width = max(len(r[0]) for r in rows) + 2
    print()
    for title, value in rows:
        print(f"{title:<{width}}{value}")
    print()
    print(f"{'target':<32}{'measured':>14}   {'goal':<12}")
    print("-" * 66)
    for what, measured, goal, ok in targets:
        print(f"{what:<32}{measured:>14}   {goal:<12}{'met' if ok else 'MISSED'}")
    for note in notes:
        print("note:", note)
    versions = os.path.join(directory, "versions.txt")
    if os.path.exists(versions):
        print()
        print(open(versions).read().strip())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
