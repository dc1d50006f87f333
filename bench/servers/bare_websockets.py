"""The "Python ceiling": a bare ``websockets`` server speaking the minimal SignalR subset.

It answers the JSON handshake with ``{}``, every blocking invocation with a Completion whose
result is the first argument, and ignores pings. No hub dispatch, no ASGI, no Channels: what
is left is the cost of WebSocket framing and JSON in Python, the floor any Python hub sits on.
It serves every path, so the load generator can use the same URL as for the real hub.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

RS = "\x1e"


def answer(record: str) -> str | None:
    """The reply to one hub message: a Completion for an invocation, else nothing."""
    message = json.loads(record)
    if message.get("type") != 1 or "invocationId" not in message:
        return None
    arguments = message.get("arguments") or [None]
    completion = {"type": 3, "invocationId": message["invocationId"], "result": arguments[0]}
    return json.dumps(completion, separators=(",", ":")) + RS


async def handle(ws: ServerConnection) -> None:
    """Handshake first, then echo invocations until the client goes away."""
    handshaken = False
    try:
        async for frame in ws:
            text = frame if isinstance(frame, str) else frame.decode()
            replies = []
            for record in text.split(RS):
                if not record:
                    continue
                if not handshaken:
                    handshaken = True
                    replies.append("{}" + RS)
                    continue
                reply = answer(record)
                if reply:
                    replies.append(reply)
            if replies:
                await ws.send("".join(replies))
    except ConnectionClosed:
        pass


async def serve_forever(host: str, port: int) -> None:
    """Listen until cancelled; compression off, as for every other target."""
    async with serve(handle, host, port, compression=None, max_size=None, backlog=1024):
        print(f"bare websockets server on ws://{host}:{port}", file=sys.stderr, flush=True)
        await asyncio.get_running_loop().create_future()


def main() -> int:
    """Parse --host/--port, lift the fd limit and run on uvloop when installed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    coro = serve_forever(args.host, args.port)
    runner: Any
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    try:
        runner(coro)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
