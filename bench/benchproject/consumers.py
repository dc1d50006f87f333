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
