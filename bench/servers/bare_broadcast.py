"""The Python ceiling for cross-process groups: ``websockets`` plus a minimal Redis backplane.

Run two (or more) of these on one Redis. Each speaks the minimal SignalR subset the load
generator needs: the JSON handshake, ``Join(group)`` and ``Broadcast(group, payload)``
invocations (each answered with a void Completion) and ``Receive`` invocations to the group's
members. A broadcast is serialised once, written to the local members, and published ONCE to
Redis (channel ``<prefix><group>``); every other process, subscribed to the groups it has
local members in, writes the same frame to its own members. That is the design the package's
backplane follows, with nothing else in the way (no ASGI, no Channels, no hub dispatch), so
its deliveries per second bound what any Python server can do on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
from typing import Any

from redis import asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

RS = "\x1e"


class Node:
    """One process's groups and its link to the others through Redis pub/sub."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        self.prefix = prefix
        self.origin = f"{os.getpid()}-{id(self):x}"
        self.groups: dict[str, set[ServerConnection]] = {}
        self.redis: Any = aioredis.Redis.from_url(redis_url)
        self.pubsub: Any = self.redis.pubsub()
        self.reader: asyncio.Task[None] | None = None

    async def join(self, ws: ServerConnection, group: str) -> None:
        """Add a local member; subscribe to the group's Redis channel for its first one."""
        members = self.groups.setdefault(group, set())
        first = not members
        members.add(ws)
        if first:
            await self.pubsub.subscribe(self.prefix + group)
            if self.reader is None:
                self.reader = asyncio.create_task(self.read())

    async def leave(self, ws: ServerConnection, group: str) -> None:
        """Drop a local member; unsubscribe when the group has none left here."""
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(ws)
        if not members:
            del self.groups[group]
            await self.pubsub.unsubscribe(self.prefix + group)

    async def broadcast(self, group: str, payload: Any) -> None:
        """Serialise once, write to local members, publish once for the other processes."""
        invocation = {"type": 1, "target": "Receive", "arguments": [payload]}
        frame = json.dumps(invocation, separators=(",", ":")) + RS
        broadcast(self.groups.get(group, ()), frame)
        await self.redis.publish(self.prefix + group, f"{self.origin}|{frame}")

    async def read(self) -> None:
        """Fan every other process's publication out to the local members of its group."""
        async for message in self.pubsub.listen():
            if message.get("type") != "message":
                continue
            origin, _, frame = message["data"].decode().partition("|")
            if origin == self.origin:
                continue
            group = message["channel"].decode()[len(self.prefix) :]
            broadcast(self.groups.get(group, ()), frame)


def completion(message: dict[str, Any], error: str | None = None) -> str | None:
    """A void Completion for a blocking invocation (None for a non-blocking one)."""
    if "invocationId" not in message:
        return None
    reply: dict[str, Any] = {"type": 3, "invocationId": message["invocationId"]}
    if error:
        reply["error"] = error
    return json.dumps(reply, separators=(",", ":")) + RS


async def handle(node: Node, ws: ServerConnection) -> None:
    """Handshake first, then Join/Broadcast invocations in order until the client leaves."""
    handshaken = False
    joined: set[str] = set()
    try:
        async for frame in ws:
            text = frame if isinstance(frame, str) else frame.decode()
            for record in text.split(RS):
                if not record:
                    continue
                if not handshaken:
                    handshaken = True
                    await ws.send("{}" + RS)
                    continue
                message = json.loads(record)
                if message.get("type") != 1:
                    continue
                target = str(message.get("target", "")).lower()
                arguments = message.get("arguments") or []
                error = None
                if target == "join" and arguments:
                    if arguments[0] not in joined:
                        joined.add(arguments[0])
                        await node.join(ws, arguments[0])
                elif target == "broadcast" and len(arguments) >= 2:
                    await node.broadcast(arguments[0], arguments[1])
                else:
                    error = f"Unknown hub method '{message.get('target')}'"
                reply = completion(message, error)
                if reply:
                    await ws.send(reply)
    except ConnectionClosed:
        pass
    finally:
        for group in joined:
            await node.leave(ws, group)


async def serve_forever(host: str, port: int, redis_url: str, prefix: str) -> None:
    """Listen until cancelled; compression off, as for every other target."""
    node = Node(redis_url, prefix)
    await node.redis.ping()

    async def handler(ws: ServerConnection) -> None:
        await handle(node, ws)

    async with serve(handler, host, port, compression=None, max_size=None, backlog=1024):
        print(f"bare broadcast server on ws://{host}:{port}", file=sys.stderr, flush=True)
        await asyncio.get_running_loop().create_future()


def main() -> int:
    """Parse the options, lift the fd limit and run on uvloop when installed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default="bench.bare.", help="Redis channel name prefix")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    coro = serve_forever(args.host, args.port, args.redis_url, args.prefix)
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
