"""Sans-I/O hub protocol codecs: messages, framing, handshake, JSON and MessagePack."""

from __future__ import annotations

from .base import HubProtocol, Payload, TransferFormat
from .json_protocol import JsonHubProtocol
from .messages import (
    NO_RESULT,
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    Invocation,
    MessageType,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)

__all__ = [
    "NO_RESULT",
    "Ack",
    "CancelInvocation",
    "Close",
    "Completion",
    "HubMessage",
    "HubProtocol",
    "Invocation",
    "JsonHubProtocol",
    "MessageType",
    "Payload",
    "Ping",
    "Sequence",
    "StreamInvocation",
    "StreamItem",
    "TransferFormat",
    "get_protocol",
]

_PROTOCOLS: dict[str, HubProtocol] = {"json": JsonHubProtocol()}


def get_protocol(name: str) -> HubProtocol | None:
    """The registered protocol called `name`, or None."""
    return _PROTOCOLS.get(name)


def register_protocol(protocol: HubProtocol) -> None:
    """Make a protocol available to handshakes (the MessagePack protocol registers itself)."""
    _PROTOCOLS[protocol.name] = protocol
