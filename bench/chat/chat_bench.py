"""The drivers of bench/chat: envhub's chat socket (docs/chat.md) under load, with the sockets
in worker processes (chat_client.py; for the live subscribers the compiled chat_client.c when
given --client-c). Needs `websockets` (and uvloop unless BENCH_CHAT_UVLOOP=0).

  chat_bench.py live --url WS --room R --tokens FILE --sender-token TOKEN --hub-pid PID --out DIR
                     [--subscribers 1000] [--procs 4] [--rate 100] [--duration 30] [--drain 5]
                     [--client-c BINARY] [--nice N]
      Opens --subscribers sockets spread over --procs worker processes (tokens from FILE, one
      per line, used in turn), each subscribed to R. Once all are subscribed, one sender socket
      in this process sends `send` frames at --rate for --duration seconds; each text is
      "SEQ SENT_NS", SENT_NS being CLOCK_MONOTONIC (the same clock in every process) read just
      before the frame is written. A subscriber's latency is its receive time minus SENT_NS.
      After the last send it waits --drain seconds, then each worker counts, per subscriber,
      the acknowledged messages it never got. Writes DIR/live.json.
  chat_bench.py idle --url WS --room R --tokens FILE --hub-pid PID --out DIR
                     [--connections 10000] [--procs 4] [--warmup 100] [--settle 5] [--no-subscribe]
      Opens --warmup sockets (kept open), reads the hub's VmRSS, opens --connections more (each
      subscribed to R, then silent; with --no-subscribe only a `ping` each), waits --settle
      seconds, reads VmRSS again, closes them all and reads it once more. Writes DIR/idle.json.
"""
import argparse
import array
import asyncio
import json
import os
import sys
import time

from chat_client import connect_to, run

CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chat_client.py")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU seconds of `pid` so far (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


def machine_ticks():
    """(idle, total) CPU ticks of the machine so far."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)


def percentile(ordered, fraction):
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * fraction + 0.5) - 1))]


# --- drivers ------------------------------------------------------------------------------------

class Workers:
    """Worker processes, each with a share of the sockets; they speak one JSON line at a time."""

    def __init__(self, args, mode, total, expected=0, first_index=0, subscribe=True):
        self.args, self.mode, self.total, self.expected = args, mode, total, expected
        self.subscribe = subscribe
        self.first_index = first_index
        self.procs = []

    async def start(self, procs, first=0):
        procs = max(1, min(procs, self.total)) if self.total else 0
        for k in range(procs):
            count = self.total // procs + (1 if k < self.total % procs else 0)
            index = self.first_index + k
            # Lower priority than the hub (and the sender): see --nice.
            nice = ["nice", "-n", str(self.args.nice)] if getattr(self.args, "nice", 0) else []
            # The live subscribers in C when given (--client-c), else in Python.
            program = [self.args.client_c] if self.mode == "live" and getattr(self.args, "client_c", None) \
                else [sys.executable, CLIENT]
            self.procs.append(await asyncio.create_subprocess_exec(
                *nice, *program, self.mode, str(index),
                "--url", self.args.url, "--room", self.args.room, "--tokens", self.args.tokens,
                "--first", str(first), "--count", str(count), "--expected", str(self.expected),
                "--out", self.args.out, *([] if self.subscribe else ["--no-subscribe"]),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
            first += count

    @property
    def pids(self):
        return [p.pid for p in self.procs]

    async def lines(self, timeout):
        async def one(proc):
            line = await proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker {proc.pid} exited (status {await proc.wait()})")
            return json.loads(line)
        return await asyncio.wait_for(asyncio.gather(*(one(p) for p in self.procs)), timeout)

    async def tell(self, command):
        for proc in self.procs:
            proc.stdin.write(command.encode() + b"\n")
            await proc.stdin.drain()

    async def wait(self):
        for proc in self.procs:
            await proc.wait()


def cpu_of(pids):
    values = [cpu_seconds(p) for p in pids]
    return values


def ready_summary(label, ready):
    opened = sum(r["ready"] for r in ready)
    failed = sum(r["failed"] for r in ready)
    seconds = max((r["seconds"] for r in ready), default=0)
    print(f"    {label}: {opened} subscribed, {failed} failed, in {seconds:.1f} s", file=sys.stderr)
    for r in ready:
        for error in r["errors"]:
            print(f"    open error: {error}", file=sys.stderr)
    return opened, failed, seconds


async def live(args):
    n_messages = int(args.rate * args.duration)
    hub = args.hub_pid
    out = {"subscribers": args.subscribers, "procs": args.procs, "nice": args.nice,
           "client": "c" if args.client_c else "python", "rate": args.rate,
           "duration": args.duration, "drain": args.drain, "messages": n_messages,
           "hub_rss_before_kb": rss_kb(hub)}
    workers = Workers(args, "live", args.subscribers, expected=n_messages)
    await workers.start(args.procs)
    ready = await workers.lines(args.open_timeout)
    out["opened"], out["open_failed"], out["open_seconds"] = ready_summary("subscribers", ready)
    out["hub_rss_subscribed_kb"] = rss_kb(hub)

    sender = await connect_to(args.url, args.sender_token)
    sent_at = {}       # seq -> monotonic ns
    acked = {}         # seq -> message id
    ack_latency = []   # ns
    errors = []
    all_acked = asyncio.Event()

    async def read_acks():
        async for raw in sender:
            now = time.monotonic_ns()
            frame = json.loads(raw)
            kind = frame.get("type")
            if kind == "ack":
                seq = int(frame["ref"])
                acked[seq] = frame["message"]["id"]
                ack_latency.append(now - sent_at[seq])
                if len(acked) == n_messages:
                    all_acked.set()
            elif kind == "error":
                errors.append(frame)

    reader = asyncio.create_task(read_acks())
    print(f"    sending {n_messages} messages at {args.rate:g}/s to {args.subscribers} subscribers",
          file=sys.stderr)
    self_pid = os.getpid()
    watched = [hub, self_pid] + workers.pids
    cpu_before = cpu_of(watched)
    machine_before = machine_ticks()
    late = 0
    start = time.monotonic() + 0.1
    first_ns = last_ns = None
    for seq in range(n_messages):
        delay = start + seq / args.rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1
        now_ns = time.monotonic_ns()
        sent_at[seq] = now_ns
        await sender.send(f'{{"type":"send","room":"{args.room}","text":"{seq} {now_ns}","ref":"{seq}"}}')
        first_ns = first_ns or now_ns
        last_ns = now_ns
    cpu_after = cpu_of(watched)
    machine_after = machine_ticks()
    wall = (last_ns - first_ns) / 1e9 + 1 / args.rate
    try:
        await asyncio.wait_for(all_acked.wait(), args.drain)
    except asyncio.TimeoutError:
        pass
    remaining = args.drain - (time.monotonic_ns() - last_ns) / 1e9
    if remaining > 0:
        await asyncio.sleep(remaining)
    reader.cancel()
    cpu_drained = cpu_of(watched)
    await sender.close()

    acked_file = os.path.join(args.out, "acked.txt")
    with open(acked_file, "w") as f:
        f.write("\n".join(str(s) for s in sorted(acked)))
    await workers.tell(f"stop {acked_file}")
    results = await workers.lines(args.open_timeout)
    await workers.wait()
    out["hub_rss_end_kb"] = rss_kb(hub)
    # The hub stores a socket's `send`s as they finish, not necessarily in the order sent.
    reordered, highest = 0, 0
    for seq in sorted(acked):
        if acked[seq] < highest:
            reordered += 1
        highest = max(highest, acked[seq])
    out["stored_out_of_send_order"] = reordered

    latencies = array.array("q")
    for k in range(len(workers.procs)):
        path = os.path.join(args.out, f"lat-{k}.bin")
        part = array.array("q")
        with open(path, "rb") as f:
            part.frombytes(f.read())
        os.remove(path)
        results[k]["p99_ms"] = (percentile(sorted(part), 0.99) or 0) / 1e6
        latencies.extend(part)
    ordered = sorted(latencies)
    ack_latency.sort()

    def cores(i):
        if cpu_before[i] is None or cpu_after[i] is None:
            return None
        return (cpu_after[i] - cpu_before[i]) / wall

    worker_cores = [cores(2 + k) for k in range(len(workers.procs))]
    idle_before, total_before = machine_before
    idle_after, total_after = machine_after
    out.update({
        "sent": len(sent_at), "acked": len(acked), "unacked": len(sent_at) - len(acked),
        "error_frames": len(errors), "first_error_frames": errors[:5], "late_sends": late,
        "send_seconds": wall, "rate_achieved": len(sent_at) / wall,
        "deliveries_expected": len(acked) * out["opened"],
        "received": len(ordered),
        "lost": sum(r["lost"] for r in results),
        "subscribers_losing": sum(r["subscribers_losing"] for r in results),
        "unexpected": sum(r["unexpected"] for r in results),
        "duplicates": sum(r["duplicates"] for r in results),
        "disordered": sum(r["disordered"] for r in results),
        "unreadable": sum(r["unreadable"] for r in results),
        "closed_by_hub": merge_counts(r["closed_by_hub"] for r in results),
        "latency_ms": {name: (percentile(ordered, q) or 0) / 1e6 for name, q in
                       [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p999", 0.999)]},
        "ack_ms": {"p50": (percentile(ack_latency, 0.5) or 0) / 1e6, "p99": (percentile(ack_latency, 0.99) or 0) / 1e6},
        "hub_cores": cores(0), "sender_cores": cores(1), "worker_cores": worker_cores,
        "worker_p99_ms": [r["p99_ms"] for r in results],
        "machine_idle": (idle_after - idle_before) / max(1, total_after - total_before),
    })
    out["latency_ms"]["max"] = (ordered[-1] / 1e6) if ordered else None
    out["latency_ms"]["min"] = (ordered[0] / 1e6) if ordered else None
    # Per delivery: CPU from the first send to the end of the drain, over every frame received.
    if out["received"] and cpu_drained[0] is not None:
        out["hub_cpu_us_per_delivery"] = (cpu_drained[0] - cpu_before[0]) / out["received"] * 1e6
        spent = [a - b for a, b in zip(cpu_drained[2:], cpu_before[2:]) if a is not None and b is not None]
        out["client_cpu_us_per_frame"] = sum(spent) / out["received"] * 1e6
    write(args.out, "live.json", out)


def merge_counts(dicts):
    merged = {}
    for d in dicts:
        for key, n in d.items():
            merged[key] = merged.get(key, 0) + n
    return merged


async def idle(args):
    hub = args.hub_pid
    out = {"connections": args.connections, "procs": args.procs, "warmup": args.warmup,
           "subscribed": not args.no_subscribe}
    warm = Workers(args, "idle", args.warmup, first_index=1000, subscribe=not args.no_subscribe)
    await warm.start(1, first=args.connections)
    ready = await warm.lines(args.open_timeout)
    out["warmup_opened"], _, _ = ready_summary("warm-up sockets (kept open)", ready)
    await asyncio.sleep(1)
    out["hub_rss_before_kb"] = rss_kb(hub)
    cpu_before = cpu_seconds(hub)

    workers = Workers(args, "idle", args.connections, subscribe=not args.no_subscribe)
    await workers.start(args.procs)
    ready = await workers.lines(args.open_timeout)
    out["opened"], out["open_failed"], out["open_seconds"] = ready_summary("idle sockets", ready)
    out["hub_cpu_open_s"] = cpu_seconds(hub) - cpu_before
    samples = []
    for _ in range(max(1, int(args.settle))):
        await asyncio.sleep(1)
        samples.append(rss_kb(hub))
    out["hub_rss_open_samples_kb"] = samples
    out["hub_rss_open_kb"] = samples[-1]
    cpu_idle_before = cpu_seconds(hub)
    await asyncio.sleep(args.settle)
    out["hub_cores_idle"] = (cpu_seconds(hub) - cpu_idle_before) / args.settle
    out["client_rss_kb"] = sum(rss_kb(p) or 0 for p in workers.pids)
    out["hub_threads"] = threads(hub)
    await workers.tell("close")
    results = await workers.lines(args.open_timeout)
    await workers.wait()
    # The hub returns the allocator's free memory on a 5 s timer (MemoryTrimmer).
    await asyncio.sleep(10)
    out["hub_rss_closed_kb"] = rss_kb(hub)
    await warm.tell("close")
    await warm.lines(args.open_timeout)
    await warm.wait()
    out["closed_by_hub"] = merge_counts(r["closed_by_hub"] for r in results)
    out["close_errors"] = sum(r["close_errors"] for r in results)
    out["close_seconds"] = max(r["close_seconds"] for r in results)
    out["other_frames"] = sum(r["other_frames"] for r in results)
    if out["opened"]:
        out["kb_per_connection"] = (out["hub_rss_open_kb"] - out["hub_rss_before_kb"]) / out["opened"]
    write(args.out, "idle.json", out)


def threads(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        return None


def write(directory, name, doc):
    with open(os.path.join(directory, name), "w") as f:
        json.dump(doc, f, indent=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", required=True)
    common.add_argument("--room", required=True)
    common.add_argument("--tokens", required=True, help="file with one session token per line")
    common.add_argument("--out", required=True, help="directory for results")
    common.add_argument("--open-timeout", type=float, default=300)
    p = sub.add_parser("live", parents=[common])
    p.add_argument("--sender-token", required=True)
    p.add_argument("--hub-pid", type=int, required=True)
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--rate", type=float, default=100)
    p.add_argument("--duration", type=float, default=30)
    p.add_argument("--drain", type=float, default=5)
    p.add_argument("--client-c", help="the compiled chat_client.c, for the subscribers (default: chat_client.py)")
    p.add_argument("--nice", type=int, default=0,
                   help="niceness of the subscriber processes: they stand in for clients on other machines, "
                        "so on a shared machine they should not take the CPU from the hub")
    p = sub.add_parser("idle", parents=[common])
    p.add_argument("--hub-pid", type=int, required=True)
    p.add_argument("--connections", type=int, default=10000)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--settle", type=float, default=5)
    p.add_argument("--no-subscribe", action="store_true", help="open the sockets without subscribing them")
    args = parser.parse_args()
    run({"live": live, "idle": idle}[args.command](args))


if __name__ == "__main__":
    main()
