"""An agent that misbehaves on request, for the agent conversation tests (PORT from envhub).

GET  /health    200
POST /reply     {"message", "history"} -> text/event-stream, by message:
  history       one token: the JSON of the history it was sent, then done
  fail          500 with a text body
  json          200 application/json instead of an event stream
  error         token "partial ", then an error event
  break         token "partial ", then the connection closes without done
  die           token "partial ", then the process exits
  big           one token of 1 MiB and a byte, then done
  slow N        N tokens "wI " 50 ms apart, then done; when the hub hangs up first, it
                creates the file $MARKER_DIR/hung-up
"""
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ["PORT"])
MARKER_DIR = os.environ.get("MARKER_DIR", "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def event(self, name, fields):
        self.wfile.write(f"event: {name}\ndata: {json.dumps(fields)}\n\n".encode())
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, b'{"status": "healthy"}', "application/json")
        self.reply(404, b"not here", "text/plain")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        words = body.get("message", "").split()
        command = words[0] if words else ""
        if command == "fail":
            return self.reply(500, b"the agent broke", "text/plain")
        if command == "json":
            return self.reply(200, b'{"reply": "not a stream"}', "application/json")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if command == "history":
            text = json.dumps(body.get("history"))
            self.event("token", {"text": text})
            return self.event("done", {"reply": text})
        if command == "big":
            self.event("token", {"text": "x" * ((1 << 20) + 1)})
            return self.event("done", {"reply": "too big"})
        if command in ("error", "break", "die"):
            self.event("token", {"text": "partial "})
            if command == "error":
                self.event("error", {"message": "the model is overloaded"})
            if command == "die":
                os._exit(3)
            return
        if command == "slow":
            reply = ""
            try:
                for index in range(int(words[1])):
                    token = f"w{index} "
                    reply += token
                    self.event("token", {"text": token})
                    time.sleep(0.05)
                self.event("done", {"reply": reply})
            except (BrokenPipeError, ConnectionResetError):
                if MARKER_DIR:
                    open(os.path.join(MARKER_DIR, "hung-up"), "w").close()
            return
        self.event("done", {"reply": "unknown command"})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
    server.daemon_threads = True
    print(f"agent test app on {PORT}", flush=True)
    server.serve_forever()
