"""The "Python ceiling": a bare ``websockets`` server speaking the minimal SignalR subset.

It answers the JSON handshake with ``{}``, every blocking invocation with a Completion whose
result is the first argument, and ignores pings. No hub dispatch, no ASGI, no Channels: what
is left is the cost of WebSocket framing and JSON in Python, the floor any Python hub sits on.
It serves every path, so the load generator can use the same URL as for the real hub.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.servers.minimal_signalr import completion, listen, main, serve_connection


async def answer(message: dict[str, Any]) -> str | None:
    """The reply to one invocation: a Completion echoing its first argument (blocking only)."""
    if "invocationId" not in message:
        return None
    arguments = message.get("arguments") or [None]
    return completion(message["invocationId"], result=arguments[0])


async def handle(ws: ServerConnection) -> None:
    """Handshake first, then echo invocations until the client goes away."""
    await serve_connection(ws, answer)


async def serve_forever(args: argparse.Namespace) -> None:
    """Listen on ``--host``/``--port`` until cancelled."""
    await listen(handle, args.host, args.port, "bare websockets server")


if __name__ == "__main__":
    sys.exit(main(__doc__, serve_forever))
