"""WebSocket client side of bench/gateway (needs the `websockets` package).

  ws_bench.py latency LABEL URL [--count N] [--warmup N] [--header 'Name: value']
      One connection, N echo round trips of 32 bytes one after the other.
      prints: LABEL  p50-ms  p99-ms  round-trips  errors
  ws_bench.py hold LABEL URL [--connections N] [--seconds S] [--pids 1,2] [--header ...]
      Opens N connections (64 handshakes at a time), holds them all for S seconds, each
      sending a message every few seconds and expecting its echo, then closes them.
      Reads the summed VmRSS of --pids before opening, once all are open, at the end of
      the hold and 10 s after closing.
      prints: LABEL  connections  seconds  errors  rss-before-kB  rss-open-kB  rss-held-kB
              rss-after-kB  open-failures  echo-failures  dropped  unclean-closes
Details of every error go to stderr. Compression is off on both sides.
"""
import argparse
import asyncio
import random
import statistics
import sys
import time

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

PAYLOAD = b"0123456789abcdef0123456789abcdef"
MESSAGE_EVERY_S = 5.0
AFTER_CLOSING_S = 10.0  # when the RSS "after closing" is read
ECHO_TIMEOUT_S = 10.0


def connect_to(url, headers):
    # proxy=None: never pick up an HTTP(S)_PROXY from the environment; every target is on 127.0.0.1.
    return connect(url, additional_headers=headers, compression=None, proxy=None,
                   open_timeout=30, close_timeout=10, max_size=1 << 20)


def percentile(ordered, fraction):
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * fraction + 0.5) - 1))]


async def latency(args, headers):
    samples = []
    errors = 0
    async with connect_to(args.url, headers) as ws:
        for i in range(args.warmup + args.count):
            began = time.perf_counter_ns()
            await ws.send(PAYLOAD)
            answer = await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT_S)
            elapsed = time.perf_counter_ns() - began
            if answer != PAYLOAD:
                errors += 1
                print(f"ws_bench: {args.label}: echo {i} differs: {answer!r}", file=sys.stderr)
            elif i >= args.warmup:
                samples.append(elapsed / 1e6)
    samples.sort()
    print("\t".join([args.label, f"{statistics.median(samples):.3f}", f"{percentile(samples, 0.99):.3f}",
                     str(len(samples)), str(errors)]))


def rss_kb(pids):
    """Summed VmRSS in kB of the processes still alive; '-' without pids."""
    if not pids:
        return "-"
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return str(total)


async def hold(args, headers):
    counts = {"open": 0, "echo": 0, "dropped": 0, "close": 0}
    gate = asyncio.Semaphore(64)
    opened = []

    def fail(kind, index, error):
        counts[kind] += 1
        if counts[kind] <= 5:
            print(f"ws_bench: {args.label}: connection {index}: {kind} error: {error!r}", file=sys.stderr)

    async def open_one(index):
        async with gate:
            try:
                opened.append((index, await connect_to(args.url, headers)))
            except Exception as error:  # noqa: BLE001 - every failure counts, whatever it is
                fail("open", index, error)

    async def talk(index, ws, until):
        # Spread the messages over time so they do not arrive in waves.
        await asyncio.sleep(random.uniform(0, MESSAGE_EVERY_S))
        n = 0
        while time.monotonic() < until:
            message = f"{index}:{n}".encode()
            try:
                await ws.send(message)
                answer = await asyncio.wait_for(ws.recv(), ECHO_TIMEOUT_S)
            except ConnectionClosed as error:
                fail("dropped", index, error)
                return
            except (asyncio.TimeoutError, OSError) as error:
                fail("echo", index, error)
                return
            if answer != message:
                fail("echo", index, f"got {answer!r} for {message!r}")
                return
            n += 1
            await asyncio.sleep(max(0.0, min(MESSAGE_EVERY_S, until - time.monotonic())))

    async def close_one(index, ws):
        async with gate:
            try:
                await ws.close()
            except Exception as error:  # noqa: BLE001
                fail("close", index, error)
                return
            if ws.close_code != 1000:
                fail("close", index, f"close code {ws.close_code}")

    pids = [p for p in args.pids.split(",") if p]
    rss_before = rss_kb(pids)
    began = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(args.connections)))
    print(f"    {len(opened)}/{args.connections} open after {time.monotonic() - began:.1f} s; "
          f"holding {args.seconds:g} s", file=sys.stderr)
    rss_open = rss_kb(pids)
    until = time.monotonic() + args.seconds
    await asyncio.gather(*(talk(i, ws, until) for i, ws in opened))
    rss_held = rss_kb(pids)
    await asyncio.gather(*(close_one(i, ws) for i, ws in opened))
    # Give the proxy time to release what the connections held (envhub returns the
    # allocator's free memory on a 5 s timer: MemoryTrimmer).
    await asyncio.sleep(AFTER_CLOSING_S)
    rss_after = rss_kb(pids)
    errors = sum(counts.values())
    print("\t".join([args.label, str(args.connections), f"{args.seconds:g}", str(errors),
                     rss_before, rss_open, rss_held, rss_after,
                     str(counts["open"]), str(counts["echo"]), str(counts["dropped"]), str(counts["close"])]))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["latency", "hold"])
    parser.add_argument("label")
    parser.add_argument("url")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--pids", default="")
    args = parser.parse_args()
    headers = [tuple(part.strip() for part in h.split(":", 1)) for h in args.header]
    asyncio.run(latency(args, headers) if args.mode == "latency" else hold(args, headers))


if __name__ == "__main__":
    main()
