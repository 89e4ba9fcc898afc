"""The socket side of bench/chat: envhub chat sockets that count what they receive (needs
`websockets`; uvloop unless BENCH_CHAT_UVLOOP=0).

  chat_client.py MODE INDEX --url WS --room R --tokens FILE --first I --count N --out DIR
                 [--expected MESSAGES] [--no-subscribe]
      A worker process, started by chat_bench.py (MODE live or idle, for `ps`): opens sockets
      first..first+N-1 (tokens from FILE, one per line, used in turn), subscribes each to R
      (or, with --no-subscribe, has it answer one `ping`), prints one JSON line once all are
      ready, then waits for a command on stdin: `stop ACKED_FILE` (count, per socket, the
      acknowledged sequence numbers it never received; save every latency to
      DIR/lat-INDEX.bin) or `close`. Prints one JSON result line and closes its sockets.

Python is the slow side here (1,000 subscribers x 100 messages/s = 100,000 frames/s), so a
socket takes frames as they arrive (ChatConnection), without websockets' message queue or a
task wake-up per frame, and parses only the prefix, id and text of a `message` frame.
Compression and keep-alive pings are off.
"""
import argparse
import array
import asyncio
import json
import os
import sys
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Opcode

# JSONWriter writes keys in declaration order and no spaces (ServerFrame: type, room, message).
MESSAGE_PREFIX = b'{"type":"message"'
ID_KEY = b'"id":'
TEXT_KEY = b'"text":"'
OPEN_AT_ONCE = 32  # handshakes in flight per process
OPEN_TIMEOUT_S = 120


class ChatConnection(ClientConnection):
    """A client connection that hands text frames to `on_text`, once it is set, as they arrive.

    websockets does the handshake, control frames and closing. Once `on_text` is set and
    websockets' parser waits at a frame boundary, whole unmasked final text frames (all the hub
    sends while the socket is open) are cut out of the received bytes here, which saves about a
    fifth of the clients' CPU per frame; the first frame of any other kind goes back to
    websockets with everything after it, for good.
    """

    on_text = None
    _fast = False
    _slow_for_good = False
    _partial = b""

    def process_event(self, event):
        handler = self.on_text
        if handler is not None and event.opcode is Opcode.TEXT and event.fin:
            handler(event.data)
        else:
            super().process_event(event)

    def data_received(self, data):
        if not self._fast:
            super().data_received(data)
            if self.on_text is not None and not self._slow_for_good and self._parser_between_frames():
                self._fast = True
            return
        if self._partial:
            data = self._partial + data
            self._partial = b""
        handler = self.on_text
        pos, end = 0, len(data)
        while end - pos >= 2:
            length = data[pos + 1]
            if data[pos] != 0x81 or length > 126:  # not FIN+text, or masked, or 64-bit length
                self._fast, self._slow_for_good = False, True
                super().data_received(data[pos:])
                return
            if length == 126:
                if end - pos < 4:
                    break
                length = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                start = pos + 2
            if start + length > end:
                break
            handler(data[start:start + length])
            pos = start + length
        if pos < end:
            self._partial = data[pos:]

    def _parser_between_frames(self):
        """True when websockets' parser (nested generators) waits in reader.at_eof() with nothing
        buffered: the next byte starts a frame."""
        if self.protocol.reader.buffer:
            return False
        generator = self.protocol.parser
        while getattr(generator, "gi_yieldfrom", None) is not None:
            generator = generator.gi_yieldfrom
        return getattr(generator, "__name__", "") == "at_eof"


def connect_to(url, token):
    # proxy=None: never an HTTP(S)_PROXY from the environment; everything is on 127.0.0.1.
    return connect(url, additional_headers=[("Authorization", f"Bearer {token}")],
                   create_connection=ChatConnection, compression=None, proxy=None, ping_interval=None,
                   open_timeout=OPEN_TIMEOUT_S, close_timeout=10, max_size=1 << 20)


class Subscriber:
    """What one subscriber received: a byte per sequence number, and what was odd."""

    __slots__ = ("ws", "got", "last_id", "duplicates", "disordered", "other", "bad")

    def __init__(self, ws, expected):
        self.ws = ws
        self.got = bytearray(expected)
        self.last_id = 0
        self.duplicates = self.disordered = self.other = self.bad = 0


def make_handler(sub, latencies, clock=time.monotonic_ns):
    """The per-frame work: as little as possible."""
    got = sub.got

    def on_text(data):
        now = clock()
        if type(data) is memoryview:
            data = bytes(data)
        if not data.startswith(MESSAGE_PREFIX):
            sub.other += 1  # presence, typing...
            return
        id_start = data.find(ID_KEY) + len(ID_KEY)  # the message's id: the first "id" in the frame
        start = data.find(TEXT_KEY, id_start) + len(TEXT_KEY)
        space = data.find(b" ", start)
        end = data.find(b'"', space)
        try:
            message_id = int(data[id_start:data.find(b",", id_start)])
            seq = int(data[start:space])
            sent = int(data[space + 1:end])
        except ValueError:
            sub.bad += 1
            return
        latencies.append(now - sent)
        if seq >= len(got):
            got.extend(bytes(seq + 1 - len(got)))
        if got[seq]:
            sub.duplicates += 1
        got[seq] = 1
        # The hub promises id order within a room (not the order the sender sent them in).
        if message_id <= sub.last_id:
            sub.disordered += 1
        else:
            sub.last_id = message_id

    return on_text


async def open_subscribed(url, room, token, subscribe=True):
    """A socket subscribed to `room` (the `subscribed` frame received); with subscribe=False, one
    that has only answered a `ping` (open and authenticated, in no room)."""
    ws = await connect_to(url, token)
    try:
        await ws.send(json.dumps({"type": "subscribe", "room": room} if subscribe else {"type": "ping"}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT_S))
            if frame.get("type") == ("subscribed" if subscribe else "pong"):
                return ws
            if frame.get("type") == "error":
                raise RuntimeError(f"subscribe answered {frame}")
    except BaseException:
        await ws.close()
        raise


async def worker(args):
    tokens = [t for t in open(args.tokens).read().split() if t]
    latencies = array.array("q")
    subscribers = []
    failures = []
    gate = asyncio.Semaphore(OPEN_AT_ONCE)
    expected = max(0, args.expected)

    async def open_one(i):
        async with gate:
            try:
                ws = await open_subscribed(args.url, args.room, tokens[i % len(tokens)], not args.no_subscribe)
            except Exception as error:  # noqa: BLE001 - every failure counts, whatever it is
                failures.append(repr(error))
                return
        sub = Subscriber(ws, expected)
        ws.on_text = make_handler(sub, latencies)
        subscribers.append(sub)

    began = time.monotonic()
    await asyncio.gather(*(open_one(i) for i in range(args.first, args.first + args.count)))
    print(json.dumps({"ready": len(subscribers), "failed": len(failures), "errors": failures[:3],
                      "seconds": time.monotonic() - began}), flush=True)

    loop = asyncio.get_running_loop()
    command = (await loop.run_in_executor(None, sys.stdin.readline)).split()
    result = {"sockets": len(subscribers), "open_failed": len(failures)}
    closed = {}
    for sub in subscribers:
        if sub.ws.close_code is not None:  # closed by the hub before the end
            key = f"{sub.ws.close_code} {sub.ws.close_reason}".strip()
            closed[key] = closed.get(key, 0) + 1
    result["closed_by_hub"] = closed
    if command and command[0] == "stop":
        acked = [int(x) for x in open(command[1]).read().split()]
        lost = lost_subscribers = unexpected = 0
        for sub in subscribers:
            got = sub.got
            missing = sum(1 for seq in acked if seq >= len(got) or not got[seq])
            lost += missing
            lost_subscribers += missing > 0
            unexpected += sum(got) - (len(acked) - missing)
        with open(os.path.join(args.out, f"lat-{args.index}.bin"), "wb") as f:
            latencies.tofile(f)
        result.update({
            "received": len(latencies), "lost": lost, "subscribers_losing": lost_subscribers,
            "unexpected": unexpected,
            "duplicates": sum(s.duplicates for s in subscribers),
            "disordered": sum(s.disordered for s in subscribers),
            "other_frames": sum(s.other for s in subscribers),
            "unreadable": sum(s.bad for s in subscribers),
        })
    else:
        result["other_frames"] = sum(s.other for s in subscribers)

    close_errors = 0

    async def close_one(sub):
        nonlocal close_errors
        async with gate:
            try:
                await sub.ws.close()
            except Exception:  # noqa: BLE001
                close_errors += 1

    began = time.monotonic()
    await asyncio.gather(*(close_one(s) for s in subscribers))
    result["close_errors"] = close_errors
    result["close_seconds"] = time.monotonic() - began
    print(json.dumps(result), flush=True)


def run(coroutine):
    """Runs `coroutine` on uvloop (a quicker event loop: the clients' time per frame is mostly the
    loop's), or on asyncio's own with BENCH_CHAT_UVLOOP=0."""
    if os.environ.get("BENCH_CHAT_UVLOOP", "1") == "1":
        import uvloop
        uvloop.run(coroutine)
    else:
        asyncio.run(coroutine)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["live", "idle"])
    parser.add_argument("index", type=int)
    parser.add_argument("--url", required=True)
    parser.add_argument("--room", required=True)
    parser.add_argument("--tokens", required=True, help="file with one session token per line")
    parser.add_argument("--out", required=True, help="directory for results")
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--expected", type=int, default=0)
    parser.add_argument("--no-subscribe", action="store_true")
    run(worker(parser.parse_args()))


if __name__ == "__main__":
    main()
