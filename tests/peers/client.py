#!/usr/bin/env python3
"""Test peer: a scripted WebSocket client on the `websockets` asyncio API (>=15).

Run as `.venv/bin/python tests/peers/client.py`; the interop tests (tests/interop.rs) drive
it over stdin/stdout, one command a line, one answer a line (the same protocol as
client.mjs, see tests/peers/README.md):

    connect URL [PROTO,PROTO...]  ->  open PROTO|-         or  error MESSAGE
    send TEXT...                  ->  sent                 (the rest of the line, as text)
    sendbin HEX                   ->  sent                 (binary; `-` for an empty one)
    sendsize N                    ->  sent                 (binary of N bytes)
    recv                          ->  text TEXT...  |  binary HEX|-  |  close CODE REASON...
    close CODE REASON...          ->  closed CODE REASON... (the server's answering close frame)
    quit                          ->  (exits)

Every wait is bounded (10 s): a silent server gives `error timeout`. Talks to whatever URL it
is given; the tests only give 127.0.0.1. No compression, no pings, no proxy.
"""

import asyncio
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

TIMEOUT = 10


def close_line(prefix, frame):
    if frame is None:
        return f"{prefix} 1005 "
    return f"{prefix} {frame.code} {frame.reason}"


async def main():
    loop = asyncio.get_running_loop()
    ws = None
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        line = line.rstrip("\n")
        command, _, rest = line.partition(" ")
        try:
            answer = await asyncio.wait_for(run(command, rest, ws), TIMEOUT)
        except asyncio.TimeoutError:
            answer = "error timeout"
        except Exception as error:  # noqa: BLE001 - reported to the test, not fatal
            answer = f"error {type(error).__name__}: {error}"
        if isinstance(answer, tuple):
            ws, answer = answer
        if answer is None:
            break
        print(answer, flush=True)
    if ws is not None:
        ws.transport.abort()


async def run(command, rest, ws):
    if command == "connect":
        url, _, protocols = rest.partition(" ")
        offered = [p for p in protocols.split(",") if p] or None
        try:
            ws = await connect(
                url,
                subprotocols=offered,
                compression=None,
                ping_interval=None,
                max_size=64 * 1024 * 1024,
                proxy=None,
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
            )
        except Exception as error:  # noqa: BLE001 - the test reads the message
            return None, f"error {type(error).__name__}: {error}"
        return ws, f"open {ws.subprotocol or '-'}"
    if command == "send":
        await ws.send(rest)
        return "sent"
    if command == "sendbin":
        await ws.send(b"" if rest == "-" else bytes.fromhex(rest))
        return "sent"
    if command == "sendsize":
        try:
            await ws.send(bytes(int(rest)))
        except ConnectionClosed:
            pass  # the server may close before the whole message is written
        return "sent"
    if command == "recv":
        try:
            message = await ws.recv()
        except ConnectionClosed as closed:
            return close_line("close", closed.rcvd)
        if isinstance(message, str):
            return f"text {message}"
        return f"binary {message.hex() or '-'}"
    if command == "close":
        code, _, reason = rest.partition(" ")
        await ws.close(int(code), reason)
        return close_line("closed", ws.protocol.close_rcvd)
    if command == "quit":
        return None
    return f"error unknown command {command!r}"


if __name__ == "__main__":
    asyncio.run(main())
