"""WebSocket echo server for bench/gateway, run as an environment's component (PORT from envhub).

GET /health   200 (plain HTTP, for envhub's readiness check)
any other     WebSocket upgrade; every message is sent back as it came

Compression is off so the figures measure the proxies, not zlib. Needs the `websockets`
package (bench/gateway/run.sh puts it in a venv).
"""
import asyncio
import http
import os
import signal

from websockets.asyncio.server import serve

PORT = int(os.environ["PORT"])


async def echo(connection):
    async for message in connection:
        await connection.send(message)


def health(connection, request):
    if request.path == "/health":
        return connection.respond(http.HTTPStatus.OK, "ok\n")
    return None  # go on with the handshake


async def main():
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # backlog: the 1,000-connection test opens many at once.
    async with serve(echo, "127.0.0.1", PORT, process_request=health, compression=None,
                     max_size=1 << 20, backlog=4096):
        print(f"websocket echo on {PORT}", flush=True)
        await stop


if __name__ == "__main__":
    asyncio.run(main())
