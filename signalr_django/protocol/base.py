"""The codec interface every hub protocol implements (protocol layer: pure).

A protocol turns one framed record into a message and a message into one framed record.
Framing (the stream of chunks) is the framer's job; a connection owns one framer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from typing import ClassVar

from .framing import BinaryFramer, TextFramer
from .messages import HubMessage


class TransferFormat(Enum):
    """What a transport must be able to carry for a protocol."""

    TEXT = "Text"
    BINARY = "Binary"


Payload = str | bytes


class HubProtocol(ABC):
    """A hub protocol codec: JSON, MessagePack.

    `encode` returns one framed record (separator or length prefix included), ready to be
    written as one WebSocket frame, SSE event or part of a poll body.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    transfer_format: ClassVar[TransferFormat]

    def is_version_supported(self, version: int) -> bool:
        """Accept every version up to ours, as ASP.NET Core does."""
        return version <= self.version

    @abstractmethod
    def new_framer(self, limit: int) -> TextFramer | BinaryFramer:
        """A framer for one connection's inbound stream."""

    @abstractmethod
    def decode(self, record: Payload) -> HubMessage | None:
        """Parse one record; None for a message type this server does not know (ignored).

        Raises ProtocolError for malformed input.
        """

    @abstractmethod
    def encode(self, message: HubMessage) -> Payload:
        """Serialise one message as a framed record."""
