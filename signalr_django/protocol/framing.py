"""Incremental message framing (protocol layer: pure, no I/O).

Transports hand over chunks as they arrive: a WebSocket frame, a POST body. A chunk may hold
several hub messages or part of one, so the framers keep the unfinished tail. Each framer
enforces the maximum message size while buffering, so a peer can never make the server hold
more than one oversized message's worth of bytes.
"""

from __future__ import annotations

import codecs

from ..exceptions import MessageTooLargeError, ProtocolError

RECORD_SEPARATOR = "\x1e"
RECORD_SEPARATOR_BYTE = b"\x1e"


def too_large_message(limit: int) -> str:
    """The exact ASP.NET Core wording for an oversized message."""
    return (
        f"The maximum message size of {limit}B was exceeded. "
        "The message size can be configured in AddHubOptions."
    )


def _utf8_size(text: str, limit: int) -> int:
    """Byte length of `text` in UTF-8, computed only when the character count cannot decide."""
    n = len(text)
    if n * 4 <= limit:
        return n
    return len(text.encode("utf-8", "surrogatepass"))


class TextFramer:
    """Splits a text stream into records terminated by 0x1E (the JSON protocol's framing).

    `limit` is the largest record in UTF-8 bytes including its separator (0 = no limit).
    """

    __slots__ = ("_decoder", "_error", "_tail", "limit")

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self._tail = ""
        self._decoder: codecs.IncrementalDecoder | None = None
        self._error: MessageTooLargeError | None = None

    def feed(self, chunk: str) -> list[str]:
        """Return the complete records in `chunk` (without separators); keep the rest.

        When a record is too large, the records before it are still returned (they are
        processed, as ASP.NET Core does) and the error is raised by `raise_pending`.
        """
        if self._error is not None:
            raise self._error
        if self._tail:
            chunk = self._tail + chunk
            self._tail = ""
        parts = chunk.split(RECORD_SEPARATOR)
        tail = parts.pop()
        limit = self.limit
        if limit:
            for index, part in enumerate(parts):
                if _utf8_size(part, limit) + 1 > limit:
                    self._error = MessageTooLargeError(too_large_message(limit))
                    return parts[:index]
            if tail and _utf8_size(tail, limit) + 1 > limit:
                self._error = MessageTooLargeError(too_large_message(limit))
                return parts
        self._tail = tail
        return parts

    def raise_pending(self) -> None:
        """Raise the size error found by the last `feed`, if any."""
        if self._error is not None:
            raise self._error

    def feed_bytes(self, chunk: bytes) -> list[str]:
        """Like `feed` for UTF-8 bytes that may split a character between chunks (POST bodies)."""
        if self._decoder is None:
            self._decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise ProtocolError("Error reading JSON.") from exc
        return self.feed(text)

    @property
    def pending(self) -> int:
        """Characters buffered for an unfinished record."""
        return len(self._tail)


MAX_VARINT_BYTES = 5
MAX_BINARY_MESSAGE = 0x7FFFFFFF


def write_varint(length: int) -> bytes:
    """Encode a length prefix: little-endian groups of 7 bits, high bit = more follows."""
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class BinaryFramer:
    """Splits a byte stream into VarInt length-prefixed records (the MessagePack framing)."""

    __slots__ = ("_buffer", "limit")

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        """Return the complete record bodies in `chunk`; keep the rest."""
        buf = self._buffer
        buf += chunk
        out: list[bytes] = []
        pos = 0
        end = len(buf)
        limit = self.limit
        while pos < end:
            length = 0
            shift = 0
            i = pos
            while True:
                if i >= end:
                    if i - pos >= MAX_VARINT_BYTES:
                        raise ProtocolError("Messages over 2GB in size are not supported.")
                    del buf[:pos]
                    return out
                byte = buf[i]
                i += 1
                if i - pos == MAX_VARINT_BYTES and byte > 0x07:
                    raise ProtocolError("Messages over 2GB in size are not supported.")
                length |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
                if i - pos >= MAX_VARINT_BYTES:
                    raise ProtocolError("Messages over 2GB in size are not supported.")
            if limit and length + (i - pos) > limit:
                raise MessageTooLargeError(too_large_message(limit))
            if i + length > end:
                break
            out.append(bytes(buf[i : i + length]))
            pos = i + length
        del buf[:pos]
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered for an unfinished record."""
        return len(self._buffer)
