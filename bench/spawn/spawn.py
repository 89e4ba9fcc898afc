"""Times activations through envhub against bare starts of the same workload."""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BINARY, COUNT = sys.argv[1], int(sys.argv[2])
DEADLINE = 60


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(port, method, path, token=None, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                     data=json.dumps(body).encode() if body is not None else None)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, {}


def wait(condition, what):
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.001)
    raise SystemExit(f"bench/spawn: timed out waiting for {what}")


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, OSError):
        return False


def summary(samples):
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


def bare_starts():
    times = []
    for _ in range(COUNT):
        port = free_port()
        env = {"PATH": os.environ["PATH"], "PORT": str(port), "USER_ID": "bench"}
        began = time.monotonic()
        process = subprocess.Popen([BINARY, "workload", "hello"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait(lambda: healthy(port), "the bare workload")
        times.append((time.monotonic() - began) * 1000)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    return times


def activations():
    data = tempfile.mkdtemp(prefix="envhub-bench-spawn-")
    port = free_port()
    env = dict(os.environ, ENVHUB_DATA_DIR=data, ENVHUB_ADMIN_PASSWORD="bench-admin-password",
               ENVHUB_MAX_ACTIVE_PER_USER=str(COUNT + 1), ENVHUB_LOG_LEVEL="warning")
    hub = subprocess.Popen([BINARY, "serve", "--port", str(port)], env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: call(port, "GET", "/readyz")[0] == 200 if _up(port) else False, "envhub")
        _, session = call(port, "POST", "/api/auth/login", body={"username": "admin", "password": "bench-admin-password"})
        token = session["token"]
        times = []
        for index in range(COUNT):
            name = f"p{index:02d}"
            call(port, "POST", "/api/users/admin/projects", token, {"name": name, "template": "hello"})
            path = f"/api/users/admin/projects/{name}"
            began = time.monotonic()
            status, _ = call(port, "POST", path + "/activate", token)
            assert status == 202, status
            wait(lambda: call(port, "GET", path, token)[1].get("state") == "active", name + " to be active")
            times.append((time.monotonic() - began) * 1000)
        for index in range(COUNT):
            call(port, "POST", f"/api/users/admin/projects/p{index:02d}/deactivate", token)
        for index in range(COUNT):
            wait(lambda: call(port, "GET", f"/api/users/admin/projects/p{index:02d}", token)[1].get("state") == "inactive",
                 "the environments to stop")
        return times
    finally:
        hub.send_signal(signal.SIGTERM)
        hub.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


def _up(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


bare = bare_starts()
hub = activations()
bare_median, bare_p95 = summary(bare)
hub_median, hub_p95 = summary(hub)
print(f"{'what':<40}{'median ms':>12}{'p95 ms':>10}   ({COUNT} each)")
print(f"{'envhub workload hello -> healthy':<40}{bare_median:>12.1f}{bare_p95:>10.1f}")
print(f"{'POST activate -> state active':<40}{hub_median:>12.1f}{hub_p95:>10.1f}")
overhead = hub_median - bare_median
print(f"hub overhead (median): {overhead:.1f} ms   goal < 30 ms: {'met' if overhead < 30 else 'MISSED'}")
