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
import os
import sys
from pathlib import Path
from typing import Any

from redis import asyncio as aioredis
from websockets.asyncio.server import ServerConnection, broadcast

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.servers.minimal_signalr import completion, listen, main, record, serve_connection


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
        frame = record({"type": 1, "target": "Receive", "arguments": [payload]})
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


async def handle(node: Node, ws: ServerConnection) -> None:
    """Handshake first, then Join/Broadcast invocations in order until the client leaves."""
    joined: set[str] = set()

    async def answer(message: dict[str, Any]) -> str | None:
        """Run one invocation; a void Completion (with the error, if any) for a blocking one."""
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
        if "invocationId" not in message:
            return None
        if error:
            return completion(message["invocationId"], error=error)
        return completion(message["invocationId"])

    try:
        await serve_connection(ws, answer)
    finally:
        for group in joined:
            await node.leave(ws, group)


async def serve_forever(args: argparse.Namespace) -> None:
    """Connect to Redis, then listen on ``--host``/``--port`` until cancelled."""
    node = Node(args.redis_url, args.prefix)
    await node.redis.ping()

    async def handler(ws: ServerConnection) -> None:
        await handle(node, ws)

    await listen(handler, args.host, args.port, "bare broadcast server")


def options(parser: argparse.ArgumentParser) -> None:
    """The backplane's options."""
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default="bench.bare.", help="Redis channel name prefix")


if __name__ == "__main__":
    sys.exit(main(__doc__, serve_forever, options))
