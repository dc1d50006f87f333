"""The reference: a plain Channels consumer speaking the minimal SignalR subset.

Written the way a Channels user would write it (``AsyncWebsocketConsumer``, ``json.loads`` /
``json.dumps``, text frames) so that the hub is compared with the straightforward alternative,
not with a tuned one.
"""

from __future__ import annotations

import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

RS = "\x1e"
INVOCATION, COMPLETION, PING, CLOSE = 1, 3, 6, 7


class EchoConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    """Handshake with ``{}``, answer each ``Echo`` invocation with a Completion."""

    handshaken = False

    async def connect(self) -> None:
        """Accept every connection; the SignalR handshake follows in the first frame."""
        await self.accept()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Split the frame into 0x1E-terminated records and answer them in one frame."""
        data = text_data if text_data is not None else (bytes_data or b"").decode()
        replies: list[str] = []
        for record in data.split(RS):
            if not record:
                continue
            if not self.handshaken:
                if not await self.handshake(json.loads(record), replies):
                    return
                continue
            message = json.loads(record)
            if message.get("type") == CLOSE:
                await self.close()
                return
            reply = self.answer(message)
            if reply is not None:
                replies.append(json.dumps(reply) + RS)
        if replies:
            await self.send(text_data="".join(replies))

    async def handshake(self, request: dict[str, Any], replies: list[str]) -> bool:
        """Accept the JSON protocol only; reply with an error and close otherwise."""
        if request.get("protocol") != "json":
            error = {"error": f"Protocol '{request.get('protocol')}' is not supported."}
            await self.send(text_data=json.dumps(error) + RS)
            await self.close()
            return False
        self.handshaken = True
        replies.append("{}" + RS)
        return True

    @staticmethod
    def answer(message: dict[str, Any]) -> dict[str, Any] | None:
        """The Completion for a blocking ``Echo`` invocation; nothing for pings or others."""
        if message.get("type") != INVOCATION or "invocationId" not in message:
            return None
        if str(message.get("target", "")).lower() != "echo":
            error = f"Unknown hub method '{message.get('target')}'"
            return {"type": COMPLETION, "invocationId": message["invocationId"], "error": error}
        arguments = message.get("arguments") or [None]
        return {"type": COMPLETION, "invocationId": message["invocationId"], "result": arguments[0]}


class BroadcastConsumer(EchoConsumer):
    """The Channels way to fan out to a group, in the same minimal SignalR subset as the hub.

    As in the Channels chat tutorial: the group comes from the URL
    (``ws/broadcast/<group>``), ``connect`` joins it with ``group_add`` before accepting, and
    each ``Broadcast`` invocation is one ``group_send``; the layer delivers a copy to every
    member's channel and each consumer serialises and writes its own frame in
    ``broadcast_message``. ``Join`` answers once the caller is in the group (it already is
    for the group of its URL), so a client drives this consumer exactly like the hub. A
    sender connects to ``ws/broadcast``, which joins no group.
    """

    async def connect(self) -> None:
        """Join the URL's group on the channel layer, then accept."""
        self.group_names: set[str] = set()
        group = self.scope["url_route"]["kwargs"].get("group")
        if group:
            await self.channel_layer.group_add(group, self.channel_name)
            self.group_names.add(group)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave every group this consumer joined."""
        for group in self.group_names:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Handshake, then ``Join`` / ``Broadcast`` invocations, each answered in order."""
        data = text_data if text_data is not None else (bytes_data or b"").decode()
        for record in data.split(RS):
            if not record:
                continue
            if not self.handshaken:
                replies: list[str] = []
                if not await self.handshake(json.loads(record), replies):
                    return
                await self.send(text_data="".join(replies))
                continue
            message = json.loads(record)
            if message.get("type") == CLOSE:
                await self.close()
                return
            if message.get("type") == INVOCATION:
                await self.invoke(message)

    async def invoke(self, message: dict[str, Any]) -> None:
        """Run ``Join`` or ``Broadcast``; reply with a Completion when one is expected."""
        target = str(message.get("target", "")).lower()
        arguments = message.get("arguments") or []
        reply: dict[str, Any] = {"type": COMPLETION, "invocationId": message.get("invocationId")}
        if target == "join" and arguments:
            group = str(arguments[0])
            if group not in self.group_names:
                await self.channel_layer.group_add(group, self.channel_name)
                self.group_names.add(group)
        elif target == "broadcast" and len(arguments) >= 2:
            event = {"type": "broadcast.message", "payload": arguments[1]}
            await self.channel_layer.group_send(str(arguments[0]), event)
        else:
            reply["error"] = f"Unknown hub method '{message.get('target')}'"
        if "invocationId" in message:
            await self.send(text_data=json.dumps(reply) + RS)

    async def broadcast_message(self, event: dict[str, Any]) -> None:
        """A group message from the layer: write it to this client as ``Receive``."""
        invocation = {"type": INVOCATION, "target": "Receive", "arguments": [event["payload"]]}
        await self.send(text_data=json.dumps(invocation) + RS)
