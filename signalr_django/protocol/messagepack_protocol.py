"""The MessagePack hub protocol, `messagepack` version 2 (protocol layer: pure).

Records are VarInt length-prefixed MessagePack arrays whose first item is the message type.
Output is byte-for-byte what the ASP.NET Core server writes (MessagePackHubProtocolWorker):
Invocations always carry six items, Close always three, headers are always present (`0x80`
when empty). Parsing follows the same worker rather than the spec's letter: it reads the items
in order, ignores trailing items and unknown message types, accepts the older five-item
Invocation and two-item Close, and fails with the worker's InvalidDataException texts. Any
malformed record raises ProtocolError, never another exception.

Values: see `values.msgpack_default`. Inbound timestamps become aware UTC datetimes, bins
stay `bytes`, unknown extension types stay `msgpack.ExtType`.
"""

from __future__ import annotations

import codecs
import threading
from typing import Any, ClassVar

import msgpack

from ..exceptions import ProtocolError
from .base import HubProtocol, Payload, TransferFormat
from .framing import BinaryFramer, write_varint
from .messages import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    HubMessage,
    Invocation,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)
from .values import msgpack_default

PING_RECORD = b"\x02\x91\x06"

_ERROR_RESULT = 1
_VOID_RESULT = 2
_NON_VOID_RESULT = 3

_INT32 = 1 << 31
_INT64 = 1 << 63

_SURROGATES = "signalr_django.msgpack_replace"


def _replace_surrogates(exc: UnicodeError) -> tuple[str | bytes, int]:
    """Write each lone surrogate as U+FFFD, as .NET's UTF-8 encoder does."""
    if isinstance(exc, UnicodeEncodeError):
        return b"\xef\xbf\xbd" * (exc.end - exc.start), exc.end
    raise exc


codecs.register_error(_SURROGATES, _replace_surrogates)


class _Packers(threading.local):
    """One Packer per thread: a Packer owns a buffer and must not be shared mid-`pack`."""

    def __init__(self) -> None:
        self.pack = msgpack.Packer(
            default=msgpack_default, datetime=True, use_bin_type=True, autoreset=True
        ).pack


_packers = _Packers()

# One-byte length prefixes, the common case, without building them each time.
_SHORT_PREFIXES = tuple(bytes((n,)) for n in range(0x80))


def _pack(obj: Any) -> bytes:
    """Serialise a message array; lone surrogates (only a JSON peer can send them) are replaced.

    The strict packer is the fast path; strings that are not valid Unicode take a second pass.
    """
    try:
        body: bytes = _packers.pack(obj)
    except UnicodeEncodeError:
        body = msgpack.Packer(
            default=msgpack_default, datetime=True, use_bin_type=True, unicode_errors=_SURROGATES
        ).pack(obj)
    return body


def _read_failed(field: str, kind: str) -> ProtocolError:
    return ProtocolError(f"Reading '{field}' as {kind} failed.")


def _null_or_empty(what: str) -> ProtocolError:
    return ProtocolError(f"Null or empty {what}.")


def _string(items: list[Any], index: int, field: str) -> str | None:
    """A str or nil item; a missing item or any other type fails as in .NET's ReadString."""
    if index < len(items):
        value = items[index]
        if value is None or type(value) is str:
            return value
    raise _read_failed(field, "String")


def _required(items: list[Any], index: int, field: str, what: str) -> str:
    value = _string(items, index, field)
    if not value:
        raise _null_or_empty(what)
    return value


def _int(items: list[Any], index: int, field: str, bits: int) -> int:
    if index < len(items):
        value = items[index]
        limit = _INT32 if bits == 32 else _INT64
        if type(value) is int and -limit <= value < limit:
            return value
    raise _read_failed(field, f"Int{bits}")


def _headers(items: list[Any]) -> dict[str, str] | None:
    headers = items[1] if len(items) > 1 else None
    if type(headers) is not dict:
        raise ProtocolError("Reading map length for 'headers' failed.")
    if not headers:
        return None
    for i, (key, value) in enumerate(headers.items()):
        if key is not None and type(key) is not str:
            raise _read_failed(f"headers[{i}].Key", "String")
        if not key:
            raise _null_or_empty("key in header")
        if value is not None and type(value) is not str:
            raise _read_failed(f"headers[{i}].Value", "String")
        if not value:
            raise _null_or_empty("value in header")
    return headers


def _arguments(items: list[Any]) -> list[Any]:
    args = items[4] if len(items) > 4 else None
    if type(args) is not list:
        raise ProtocolError("Reading array length for 'arguments' failed.")
    return args


def _stream_ids(items: list[Any]) -> list[str] | None:
    """Item 5 when present: clients older than stream uploads send five items."""
    if len(items) < 6:
        return None
    ids = items[5]
    if type(ids) is not list:
        raise ProtocolError("Reading array length for 'streamIds' failed.")
    for i, stream_id in enumerate(ids):
        if stream_id is not None and type(stream_id) is not str:
            raise _read_failed(f"streamIds[{i}]", "String")
        if not stream_id:
            raise _null_or_empty("value in streamIds received")
    return ids or None


class MessagePackHubProtocol(HubProtocol):
    """`{"protocol":"messagepack","version":1|2}`: binary frames of length-prefixed arrays.

    The handshake itself stays JSON text + 0x1E without a length prefix.
    """

    name: ClassVar[str] = "messagepack"
    version: ClassVar[int] = 2
    transfer_format: ClassVar[TransferFormat] = TransferFormat.BINARY

    def new_framer(self, limit: int) -> BinaryFramer:
        """A VarInt length-prefix splitter with the connection's size limit."""
        return BinaryFramer(limit)

    def decode(self, record: Payload) -> HubMessage | None:
        """Parse one record body (without its length prefix)."""
        if type(record) is str:
            raise ProtocolError("The MessagePack protocol requires binary data.")
        try:
            items = msgpack.unpackb(record, raw=False, strict_map_key=False, timestamp=3)
        except Exception as exc:  # msgpack raises ValueError, TypeError, OverflowError, ...
            raise ProtocolError("Error reading MessagePack.") from exc
        if type(items) is not list:
            raise ProtocolError("Error reading MessagePack.")
        kind = _int(items, 0, "messageType", 32)
        if kind == 1:
            # Items are checked in wire order so the first bad one is reported, as in .NET.
            headers = _headers(items)
            invocation_id = _string(items, 2, "invocationId") or None  # "" = non-blocking too
            target = _required(items, 3, "target", "target for Invocation message")
            return Invocation(target, _arguments(items), invocation_id, _stream_ids(items), headers)
        if kind == 3:
            headers = _headers(items)
            invocation_id = _required(
                items, 2, "invocationId", "invocation ID for Completion message"
            )
            result_kind = _int(items, 3, "resultKind", 32)
            if result_kind == _NON_VOID_RESULT:
                if len(items) < 5:
                    raise _read_failed("result", "Object")
                return Completion(invocation_id, result=items[4], headers=headers)
            if result_kind == _ERROR_RESULT:
                return Completion(invocation_id, _string(items, 4, "error"), headers=headers)
            if result_kind == _VOID_RESULT:
                return Completion(invocation_id, headers=headers)
            raise ProtocolError("Invalid invocation result kind.")
        if kind == 2:
            headers = _headers(items)
            invocation_id = _required(
                items, 2, "invocationId", "invocation ID for StreamItem message"
            )
            if len(items) < 4:
                raise _read_failed("item", "Object")
            return StreamItem(invocation_id, items[3], headers)
        if kind == 6:
            return Ping()
        if kind == 4:
            headers = _headers(items)
            invocation_id = _required(
                items, 2, "invocationId", "invocation ID for StreamInvocation message"
            )
            target = _required(items, 3, "target", "target for StreamInvocation message")
            return StreamInvocation(
                invocation_id, target, _arguments(items), _stream_ids(items), headers
            )
        if kind == 5:
            headers = _headers(items)
            return CancelInvocation(
                _required(items, 2, "invocationId", "invocation ID for CancelInvocation message"),
                headers,
            )
        if kind == 7:
            error = _string(items, 1, "error")
            allow_reconnect = False
            if len(items) > 2:
                allow_reconnect = items[2]
                if type(allow_reconnect) is not bool:
                    raise _read_failed("allowReconnect", "Boolean")
            return Close(error, allow_reconnect)
        if kind == 8:
            return Ack(_int(items, 1, "sequenceId", 64))
        if kind == 9:
            return Sequence(_int(items, 1, "sequenceId", 64))
        return None  # a newer message type: ignored, as .NET does

    def encode(self, message: HubMessage) -> bytes:
        """Serialise one message with its VarInt length prefix.

        Raises TypeError or ValueError for a value MessagePack cannot carry (an object without
        a conversion, an integer beyond 64 bits).
        """
        if type(message) is Ping:
            return PING_RECORD
        body = _pack(self.message_array(message))
        size = len(body)
        if size < 0x80:
            return _SHORT_PREFIXES[size] + body
        return write_varint(size) + body

    @staticmethod
    def message_array(message: HubMessage) -> list[Any]:
        """The MessagePack array of one message, item for item as .NET writes it."""
        if isinstance(message, Completion):
            headers = message.headers or {}
            if message.error is not None:
                return [3, headers, message.invocation_id, _ERROR_RESULT, message.error]
            if message.has_result:
                return [3, headers, message.invocation_id, _NON_VOID_RESULT, message.result]
            return [3, headers, message.invocation_id, _VOID_RESULT]
        if isinstance(message, Invocation):
            return [
                1,
                message.headers or {},
                message.invocation_id or None,
                message.target,
                message.arguments,
                message.stream_ids or [],
            ]
        if isinstance(message, StreamItem):
            return [2, message.headers or {}, message.invocation_id, message.item]
        if isinstance(message, Ping):
            return [6]
        if isinstance(message, Close):
            return [7, message.error or None, bool(message.allow_reconnect)]
        if isinstance(message, StreamInvocation):
            return [
                4,
                message.headers or {},
                message.invocation_id,
                message.target,
                message.arguments,
                message.stream_ids or [],
            ]
        if isinstance(message, CancelInvocation):
            return [5, message.headers or {}, message.invocation_id]
        if isinstance(message, Ack):
            return [8, message.sequence_id]
        if isinstance(message, Sequence):
            return [9, message.sequence_id]
        raise TypeError(f"Cannot encode {type(message).__name__}")
