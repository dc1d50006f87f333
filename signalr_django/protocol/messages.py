"""Hub protocol message records (protocol layer: pure data, no I/O).

The field names follow HubProtocol.md; the codecs map them to the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any


class MessageType(IntEnum):
    """The `type` numbers of HubProtocol.md."""

    INVOCATION = 1
    STREAM_ITEM = 2
    COMPLETION = 3
    STREAM_INVOCATION = 4
    CANCEL_INVOCATION = 5
    PING = 6
    CLOSE = 7
    ACK = 8
    SEQUENCE = 9


@dataclass(slots=True)
class Invocation:
    """Type 1: call `target`; a missing `invocation_id` means no reply is wanted."""

    target: str
    arguments: list[Any]
    invocation_id: str | None = None
    stream_ids: list[str] | None = None
    headers: dict[str, str] | None = None


@dataclass(slots=True)
class StreamInvocation:
    """Type 4: call a streaming `target`; items come back as StreamItem messages."""

    invocation_id: str
    target: str
    arguments: list[Any]
    stream_ids: list[str] | None = None
    headers: dict[str, str] | None = None


@dataclass(slots=True)
class StreamItem:
    """Type 2: one item of a stream, in either direction."""

    invocation_id: str
    item: Any
    headers: dict[str, str] | None = None


_NO_RESULT: Any = object()


@dataclass(slots=True)
class Completion:
    """Type 3: the end of an invocation or stream: a result, an error, or neither."""

    invocation_id: str
    error: str | None = None
    result: Any = field(default=_NO_RESULT)
    headers: dict[str, str] | None = None

    @property
    def has_result(self) -> bool:
        """True when a `result` key is present on the wire (void methods send `null`)."""
        return self.result is not _NO_RESULT


NO_RESULT: Any = _NO_RESULT


@dataclass(slots=True)
class CancelInvocation:
    """Type 5: the client cancels a stream it started."""

    invocation_id: str
    headers: dict[str, str] | None = None


@dataclass(slots=True)
class Ping:
    """Type 6: keep-alive; carries nothing."""


@dataclass(slots=True)
class Close:
    """Type 7: the sender is closing; `error` set only for error closes."""

    error: str | None = None
    allow_reconnect: bool = False


@dataclass(slots=True)
class Ack:
    """Type 8: stateful reconnect acknowledgement of every message up to `sequence_id`."""

    sequence_id: int


@dataclass(slots=True)
class Sequence:
    """Type 9: stateful reconnect: the id of the next message the sender will replay."""

    sequence_id: int


HubMessage = (
    Invocation
    | StreamInvocation
    | StreamItem
    | Completion
    | CancelInvocation
    | Ping
    | Close
    | Ack
    | Sequence
)

PING = Ping()
