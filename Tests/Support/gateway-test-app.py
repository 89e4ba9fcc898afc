"""A small app for the gateway tests, run as an environment's component (PORT from envhub).

GET /health            200
ANY /echo...           JSON: method, path, headers, length of the body read
GET /redirect          302 to /target;  /redirect-absolute: to http://127.0.0.1:PORT/target
GET /cookie            sets a=1; Path=/  and  b=2 (no path), and tries to set the hub's envhub_session
GET /sse?gate=FILE     event "one" at once, event "two" once FILE exists
GET /bytes?n=N         N bytes, streamed in 64 KiB chunks
GET /chunked           "one two three" in three chunks, then the trailer X-Trailer: done
GET /until-close       an HTTP/1.0 answer without a length: the body ends when the connection does
POST /upload?pause=S&every=T   reads the body in chunks (after S seconds, default 0; with T,
                       1 MiB at a time, T seconds apart): {"received": N}
GET /drop              "dropped", then closes the connection without saying so beforehand
GET /slow?s=N          answers after N seconds
GET /peer              JSON: this app's port, and the port of the connection's other end
GET /seen?target=T     JSON: how many requests for the target T (path and query) reached this app
GET /bare-lf           wrong on purpose: an answer whose lines end in LF alone, the connection kept
GET /no-content-with-body?delay=S   wrong on purpose: 204 with Content-Length: 5, then S seconds
                       (default 0.2) later those 5 bytes, which a 204 must not have
ANY /hang-up           reads the request, then closes the connection without answering
GET /unknown-coding    wrong on purpose: an answer in a transfer coding other than chunked (gzip),
                       which no client asked for, until the connection closes
GET /chunked-comma     wrong on purpose: `Transfer-Encoding: chunked,`, which llhttp (Node's and NIO's
                       parser) reads as another last coding, with a chunked body, until the connection closes
GET /chunked-tab       wrong on purpose, the same with `Transfer-Encoding: chunked<TAB>`, which llhttp
                       also reads as another coding, though RFC 9110 (and HTTPTypes) would trim the tab
GET /bad-chunk         wrong on purpose: a chunked answer whose first chunk size is not hexadecimal,
                       all of it in one write
HEAD /head-with-body?delay=S   wrong on purpose: the head, then S seconds (default 0.2) later a
                       body of 5 bytes, which an answer to HEAD must not have
"""
import json
import os
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(os.environ["PORT"])
SEEN = Counter()
SEEN_LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self, every=None):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self.read_chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        while received < length:
            chunk = self.rfile.read(min(65536 if every is None else 1 << 20, length - received))
            if not chunk:
                break
            received += len(chunk)
            if every is not None:
                time.sleep(every)
        return received

    def read_chunked_body(self):
        received = 0
        while True:
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b""):  # trailer lines, then the empty line
                    pass
                return received
            received += len(self.rfile.read(size))
            self.rfile.readline()

    def handle_any(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        with SEEN_LOCK:
            SEEN[self.path] += 1
            if url.path == "/seen":
                count = SEEN[query["target"][0]]
        if url.path == "/seen":
            return self.reply(200, json.dumps({"count": count}).encode(), [("Content-Type", "application/json")])
        if url.path == "/health":
            return self.reply(200, b'{"status": "healthy"}', [("Content-Type", "application/json")])
        if url.path.startswith("/echo"):
            received = self.read_body()
            body = json.dumps({"method": self.command, "path": self.path, "received": received,
                               "headers": {k.lower(): v for k, v in self.headers.items()}}).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        if url.path == "/redirect":
            return self.reply(302, headers=[("Location", "/target")])
        if url.path == "/redirect-absolute":
            return self.reply(302, headers=[("Location", f"http://127.0.0.1:{PORT}/target")])
        if url.path == "/cookie":
            return self.reply(200, b"ok", [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2"),
                                           ("Set-Cookie", "envhub_session=from-the-app; Path=/")])
        if url.path == "/sse":
            gate = query["gate"][0]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"data: one\n\n")
            self.wfile.flush()
            deadline = time.monotonic() + 60
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.wfile.write(b"data: two\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if url.path == "/bytes":
            n = int(query["n"][0])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if self.command == "HEAD":
                return
            chunk = b"x" * 65536
            left = n
            while left > 0:
                part = chunk[: min(left, len(chunk))]
                self.wfile.write(part)
                left -= len(part)
            return
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Trailer")
            self.end_headers()
            for part in (b"one ", b"two ", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\nX-Trailer: done\r\n\r\n")
            return
        if url.path == "/no-content-with-body":
            self.send_response(204)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.flush()
            time.sleep(float(query.get("delay", ["0.2"])[0]))
            self.wfile.write(b"stray")
            return
        if url.path == "/bad-chunk":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n")
            self.close_connection = True
            return
        if url.path == "/hang-up":
            self.read_body()
            self.close_connection = True
            return
        if url.path == "/unknown-coding":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot really gzip")
            self.close_connection = True
            return
        if url.path in ("/chunked-comma", "/chunked-tab"):
            coding = b"chunked," if url.path == "/chunked-comma" else b"chunked\t"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: " + coding + b"\r\n\r\n2\r\nhi\r\n0\r\n\r\n")
            self.close_connection = True
            return
        if url.path == "/bare-lf":
            self.wfile.write(b"HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n\nhi")
            return
        if url.path == "/until-close":
            self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
            self.close_connection = True
            return
        if url.path == "/drop":
            self.reply(200, b"dropped")
            self.close_connection = True
            return
        if url.path == "/peer":
            body = json.dumps({"port": PORT, "peer": self.client_address[1]}).encode()
            return self.reply(200, body, [("Content-Type", "application/json")])
        if url.path == "/head-with-body":
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            time.sleep(float(query.get("delay", ["0.2"])[0]))
            self.wfile.write(b"stray")
            return
        if url.path == "/slow":
            time.sleep(float(query["s"][0]))
            return self.reply(200, b"slow")
        if url.path == "/upload":
            time.sleep(float(query.get("pause", ["0"])[0]))
            every = query.get("every")
            received = self.read_body(float(every[0]) if every else None)
            return self.reply(200, json.dumps({"received": received}).encode(), [("Content-Type", "application/json")])
        self.reply(404, b"not here")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = handle_any


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print(f"gateway test app on {PORT}", flush=True)
    sys.stdout.flush()
    server.serve_forever()
