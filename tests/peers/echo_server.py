#!/usr/bin/env python3
"""Test peer: WebSocket echo server on the `websockets` asyncio API (>=15).

Run as `.venv/bin/python tests/peers/echo_server.py [port]`.
The contract (shared with echo_server.mjs and the Rust echo_server example)
is in tests/peers/README.md. In short:

- listens on 127.0.0.1:<port> (0 or absent = ephemeral), prints one line
  `LISTENING <port>` when ready;
- `/status/<code>` rejects the handshake with that HTTP status;
- any other path echoes text as text and binary as binary, in order;
- subprotocol: the first offered one in SUPPORTED, else none;
- text `!close <code> <reason...>` makes the server close with that code;
- a client-initiated close is answered with the same code and reason;
- max message 64 MiB, no compression, no server pings;
- SIGTERM / SIGINT exit cleanly with status 0.
"""

import asyncio
import email.utils
import http
import re
import signal
import sys

from websockets.asyncio.server import serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Response

SUPPORTED = ("chat", "superchat", "unisock.test")
MAX_SIZE = 64 * 1024 * 1024
STATUS_PATH = re.compile(r"^/status/(\d{3})$")
CLOSE_CMD = re.compile(r"^!close (\d+)(?: (.*))?$", re.DOTALL)


def select_subprotocol(_connection, offered):
    # The client's order wins (the library default is the server's order and
    # a 400 when nothing matches; the contract wants "first offered, else none").
    for proto in offered:
        if proto in SUPPORTED:
            return proto
    return None


def process_request(_connection, request):
    path = request.path.split("?", 1)[0]
    m = STATUS_PATH.match(path)
    if m is None:
        return None  # go on with the WebSocket handshake
    code = int(m.group(1))
    if not 200 <= code <= 599:
        return None
    # Build the response by hand: `connection.respond` only accepts codes
    # that http.HTTPStatus knows.
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = "Unknown"
    body = f"rejected with status {code}\n".encode()
    headers = Headers(
        [
            ("Date", email.utils.formatdate(usegmt=True)),
            ("Connection", "close"),
            ("Content-Length", str(len(body))),
            ("Content-Type", "text/plain; charset=utf-8"),
        ]
    )
    return Response(code, phrase, headers, body)


async def echo(ws):
    try:
        async for message in ws:  # str for text frames, bytes for binary
            if isinstance(message, str):
                m = CLOSE_CMD.match(message)
                if m is not None:
                    await ws.close(int(m.group(1)), m.group(2) or "")
                    return
            await ws.send(message)
    except ConnectionClosed:
        pass  # abrupt client disconnects are normal in tests


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(
            sig, lambda: stop.done() or stop.set_result(None)
        )
    server = await serve(
        echo,
        "127.0.0.1",
        port,
        select_subprotocol=select_subprotocol,
        process_request=process_request,
        compression=None,  # no permessage-deflate
        max_size=MAX_SIZE,  # default is 1 MiB
        ping_interval=None,  # no server-initiated pings
        close_timeout=5,
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    await stop
    # Close the listener and send 1001 to open connections, but do not wait
    # long for clients that never answer: tests want a prompt exit.
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), 1)
    except asyncio.TimeoutError:
        for connection in server.all_connections:
            connection.transport.abort()  # else asyncio.run waits close_timeout

if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
