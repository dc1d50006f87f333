"""Server adapters: how a connection's frames reach the client on a given ASGI server.

`websocket_outbound` and `sse_outbound` pick Daphne's fast path where it is available and
the generic ASGI path everywhere else; nothing outside this package knows which one runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..protocol import Payload
from .outbound import ListOutbound, Outbound, QueuedOutbound

__all__ = ["ListOutbound", "Outbound", "QueuedOutbound", "response_backlog", "websocket_outbound"]


def websocket_outbound(send: Any) -> Outbound:
    """The outbound of an accepted ASGI WebSocket."""
    from . import daphne

    outbound = daphne.websocket_outbound(send)
    if outbound is not None:
        return outbound

    async def emit(payload: Payload) -> None:
        if isinstance(payload, str):
            await send({"type": "websocket.send", "text": payload})
        else:
            await send({"type": "websocket.send", "bytes": payload})

    return QueuedOutbound(emit)


def response_backlog(send: Any) -> Callable[[], int] | None:
    """What the server still buffers for a streaming HTTP response (SSE), if it says."""
    from . import daphne

    return daphne.http_backlog(send)
