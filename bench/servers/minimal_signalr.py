"""The minimal SignalR subset the bare servers speak, and their common start-up.

A connection is served by :func:`serve_connection`: the first record is the JSON handshake,
answered with ``{}``; every later Invocation (type 1) goes to the server's ``answer``
coroutine, whose reply (a Completion, or None) is sent back; pings and anything else are
ignored. The replies to one frame's records go out together in one frame. :func:`main`
parses ``--host``/``--port`` (plus a server's own options), lifts the fd limit and listens
on uvloop when it is installed, with compression off as for every other target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bench.common import raise_nofile_limit, run_async

RS = "\x1e"
HANDSHAKE_REPLY = "{}" + RS

Answer = Callable[[dict[str, Any]], Awaitable[str | None]]
"""Reply to one hub Invocation: a record to send back, or None."""


def record(message: dict[str, Any]) -> str:
    """One hub message as a JSON record (compact, terminated by 0x1E)."""
    return json.dumps(message, separators=(",", ":")) + RS


def completion(invocation_id: str, **fields: Any) -> str:
    """A Completion record: ``result`` or ``error`` in ``fields``, neither for a void one."""
    return record({"type": 3, "invocationId": invocation_id, **fields})


async def serve_connection(ws: ServerConnection, answer: Answer) -> None:
    """Handshake first, then answer Invocations until the client goes away."""
    handshaken = False
    try:
        async for frame in ws:
            text = frame if isinstance(frame, str) else frame.decode()
            replies = []
            for text_record in text.split(RS):
                if not text_record:
                    continue
                if not handshaken:
                    handshaken = True
                    replies.append(HANDSHAKE_REPLY)
                    continue
                message = json.loads(text_record)
                if message.get("type") != 1:
                    continue
                reply = await answer(message)
                if reply:
                    replies.append(reply)
            if replies:
                await ws.send("".join(replies))
    except ConnectionClosed:
        pass


async def listen(
    handler: Callable[[ServerConnection], Awaitable[None]], host: str, port: int, name: str
) -> None:
    """Serve ``handler`` on ``host:port`` until cancelled; compression off, as for every target."""
    async with serve(handler, host, port, compression=None, max_size=None, backlog=1024):
        print(f"{name} on ws://{host}:{port}", file=sys.stderr, flush=True)
        await asyncio.get_running_loop().create_future()


def main(
    doc: str | None,
    serve_forever: Callable[[argparse.Namespace], Coroutine[Any, Any, None]],
    add_options: Callable[[argparse.ArgumentParser], None] | None = None,
) -> int:
    """Parse the options, lift the fd limit and run ``serve_forever(args)`` until interrupted."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0] if doc else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    if add_options is not None:
        add_options(parser)
    args = parser.parse_args()
    raise_nofile_limit()
    try:
        run_async(serve_forever(args))
    except KeyboardInterrupt:
        pass
    return 0
