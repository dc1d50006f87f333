"""The package's hubs under test: the smallest hubs that exercise one code path each."""

from __future__ import annotations

from signalr_django import Hub


class EchoHub(Hub):
    """Invoked as target ``Echo`` (hub method names match case-insensitively)."""

    async def echo(self, message: str) -> str:
        """Return the argument unchanged: the round trip measures the hub machinery only."""
        return message


class BroadcastHub(Hub):
    """Group fan-out: receivers invoke ``Join``, one sender invokes ``Broadcast``.

    ``Broadcast`` goes through ``clients.group(...).send``, the path a chat room or a live
    dashboard takes: local members are written directly, and with a Redis channel layer one
    layer message carries it to every other worker, which fans it out to its own members.
    """

    async def join(self, group: str) -> None:
        """Add the caller to ``group``; the Completion means the membership is in place."""
        await self.groups.add_to_group(self.context.connection_id, group)

    async def broadcast(self, group: str, payload: str) -> None:
        """Send ``payload`` to every member of ``group`` as a ``Receive`` invocation."""
        await self.clients.group(group).send("Receive", payload)
