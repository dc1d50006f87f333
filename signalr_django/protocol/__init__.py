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
_messagepack_loaded = False


def _load_messagepack() -> HubProtocol | None:
    """Register MessagePack on first request, if the optional `msgpack` package is installed.

    Servers whose clients never ask for it never import msgpack.
    """
    global _messagepack_loaded
    if not _messagepack_loaded:
        _messagepack_loaded = True
        try:
            from .messagepack_protocol import MessagePackHubProtocol
        except ImportError as exc:
            if exc.name != "msgpack":
                raise
        else:
            _PROTOCOLS.setdefault("messagepack", MessagePackHubProtocol())
    return _PROTOCOLS.get("messagepack")


def get_protocol(name: str) -> HubProtocol | None:
    """The registered protocol called `name`, or None."""
    protocol = _PROTOCOLS.get(name)
    if protocol is None and name == "messagepack":
        return _load_messagepack()
    return protocol


def register_protocol(protocol: HubProtocol) -> None:
    """Make a protocol available to handshakes (the MessagePack protocol registers itself)."""
    _PROTOCOLS[protocol.name] = protocol


def registered_protocols() -> list[HubProtocol]:
    """Every protocol this server can speak (MessagePack when msgpack is installed)."""
    _load_messagepack()
    return list(_PROTOCOLS.values())
