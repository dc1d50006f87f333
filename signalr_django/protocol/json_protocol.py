"""The JSON hub protocol, `json` version 2 (protocol layer: pure).

Records are UTF-8 JSON objects terminated by 0x1E. Parsing follows the ASP.NET Core server
rather than the letter of the spec: unknown properties and unknown message types are ignored,
required properties produce the same error texts. Output escapes non-ASCII characters, so a
lone surrogate coming from a client can never make an outgoing frame invalid UTF-8.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from ..exceptions import ProtocolError
from .base import HubProtocol, Payload, TransferFormat
from .framing import RECORD_SEPARATOR, TextFramer
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
from .values import json_default

_encoder = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=True, allow_nan=False, default=json_default
)
dumps = _encoder.encode


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# NaN and Infinity are not JSON (the official clients never send them): reject them while
# parsing instead of failing later when the value is echoed.
_loads = json.JSONDecoder(parse_constant=_reject_constant).decode

PING_RECORD = '{"type":6}' + RECORD_SEPARATOR


def _missing(name: str) -> ProtocolError:
    return ProtocolError(f"Missing required property '{name}'.")


def _string(obj: dict[str, Any], name: str, required: bool = True) -> Any:
    value = obj.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if type(value) is not str:
        raise ProtocolError(f"Expected '{name}' to be of type String.")
    return value


def _headers(obj: dict[str, Any]) -> dict[str, str] | None:
    headers = obj.get("headers")
    if headers is None:
        return None
    if type(headers) is not dict or not all(type(v) is str for v in headers.values()):
        raise ProtocolError("Expected 'headers' to be an object of strings.")
    return headers


def _stream_ids(obj: dict[str, Any]) -> list[str] | None:
    ids = obj.get("streamIds")
    if ids is None:
        return None
    if type(ids) is not list or not all(type(i) is str for i in ids):
        raise ProtocolError("Expected 'streamIds' to be an array of strings.")
    return ids or None


def _arguments(obj: dict[str, Any]) -> list[Any]:
    args = obj.get("arguments", _MISSING)
    if args is _MISSING:
        raise _missing("arguments")
    if type(args) is not list:
        raise ProtocolError("Expected 'arguments' to be of type Array.")
    return args


_MISSING: Any = object()


def _sequence_id(obj: dict[str, Any]) -> int:
    value = obj.get("sequenceId")
    if value is None:
        raise _missing("sequenceId")
    if type(value) is not int:
        raise ProtocolError("Expected 'sequenceId' to be of type Integer.")
    return value


class JsonHubProtocol(HubProtocol):
    """`{"protocol":"json","version":1|2}`: text frames, one JSON object per record."""

    name: ClassVar[str] = "json"
    version: ClassVar[int] = 2
    transfer_format: ClassVar[TransferFormat] = TransferFormat.TEXT

    def new_framer(self, limit: int) -> TextFramer:
        """A 0x1E record splitter with the connection's size limit."""
        return TextFramer(limit)

    def decode(self, record: Payload) -> HubMessage | None:
        """Parse one record (without its separator)."""
        try:
            obj = _loads(record if isinstance(record, str) else record.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise ProtocolError("Error reading JSON.") from exc
        if type(obj) is not dict:
            raise ProtocolError("Error reading JSON.")
        kind = obj.get("type")
        if kind is None:
            raise _missing("type")
        if type(kind) is not int:
            raise ProtocolError("Expected 'type' to be of type Integer.")
        if kind == 1:
            # The common shape read inline; anything else goes through the checking helpers
            # (in the same order, so the first error reported is the same).
            target = obj.get("target")
            if type(target) is not str:
                target = _string(obj, "target")
            arguments = obj.get("arguments")
            if type(arguments) is not list:
                arguments = _arguments(obj)
            invocation_id = obj.get("invocationId")
            if invocation_id is not None and type(invocation_id) is not str:
                _string(obj, "invocationId")
            return Invocation(
                target,
                arguments,
                invocation_id,
                _stream_ids(obj) if "streamIds" in obj else None,
                _headers(obj) if "headers" in obj else None,
            )
        if kind == 6:
            return Ping()
        if kind == 3:
            error = _string(obj, "error", required=False)
            has_result = "result" in obj
            if error is not None and has_result:
                raise ProtocolError("The 'error' and 'result' properties are mutually exclusive.")
            completion = Completion(_string(obj, "invocationId"), error, headers=_headers(obj))
            if has_result:
                completion.result = obj["result"]
            return completion
        if kind == 2:
            if "item" not in obj:
                raise _missing("item")
            return StreamItem(_string(obj, "invocationId"), obj["item"], _headers(obj))
        if kind == 4:
            return StreamInvocation(
                _string(obj, "invocationId"),
                _string(obj, "target"),
                _arguments(obj),
                _stream_ids(obj),
                _headers(obj),
            )
        if kind == 5:
            return CancelInvocation(_string(obj, "invocationId"), _headers(obj))
        if kind == 7:
            allow = obj.get("allowReconnect")
            return Close(_string(obj, "error", required=False), allow is True)
        if kind == 8:
            return Ack(_sequence_id(obj))
        if kind == 9:
            return Sequence(_sequence_id(obj))
        return None

    def encode(self, message: HubMessage) -> str:
        """Serialise one message followed by 0x1E."""
        return self.encode_body(message) + RECORD_SEPARATOR

    def encode_body(self, message: HubMessage) -> str:
        """The JSON object of one message, without the separator."""
        if isinstance(message, Completion):
            head = '{"type":3,"invocationId":' + dumps(message.invocation_id)
            if message.headers:
                head += ',"headers":' + dumps(message.headers)
            if message.error is not None:
                return head + ',"error":' + dumps(message.error) + "}"
            if message.has_result:
                return head + ',"result":' + dumps(message.result) + "}"
            return head + "}"
        if isinstance(message, Invocation):
            return self.invocation_body(
                message.target,
                message.arguments,
                message.invocation_id,
                message.headers,
                message.stream_ids,
            )
        if isinstance(message, StreamItem):
            head = '{"type":2,"invocationId":' + dumps(message.invocation_id)
            if message.headers:
                head += ',"headers":' + dumps(message.headers)
            return head + ',"item":' + dumps(message.item) + "}"
        if isinstance(message, Ping):
            return '{"type":6}'
        if isinstance(message, Close):
            body: dict[str, Any] = {"type": 7}
            if message.error is not None:
                body["error"] = message.error
            if message.allow_reconnect:
                body["allowReconnect"] = True
            return dumps(body)
        if isinstance(message, StreamInvocation):
            body = {
                "type": 4,
                "invocationId": message.invocation_id,
                "target": message.target,
                "arguments": message.arguments,
            }
            if message.stream_ids:
                body["streamIds"] = message.stream_ids
            if message.headers:
                body["headers"] = message.headers
            return dumps(body)
        if isinstance(message, CancelInvocation):
            return dumps({"type": 5, "invocationId": message.invocation_id})
        if isinstance(message, Ack):
            return '{"type":8,"sequenceId":' + str(int(message.sequence_id)) + "}"
        if isinstance(message, Sequence):
            return '{"type":9,"sequenceId":' + str(int(message.sequence_id)) + "}"
        raise TypeError(f"Cannot encode {type(message).__name__}")

    @staticmethod
    def invocation_body(
        target: str,
        arguments: Any,
        invocation_id: str | None = None,
        headers: dict[str, str] | None = None,
        stream_ids: list[str] | None = None,
    ) -> str:
        """An Invocation object; the `invocationId` key is omitted for fire-and-forget calls."""
        body: dict[str, Any] = {"type": 1}
        if invocation_id is not None:
            body["invocationId"] = invocation_id
        body["target"] = target
        body["arguments"] = arguments if isinstance(arguments, list) else list(arguments)
        if stream_ids:
            body["streamIds"] = stream_ids
        if headers:
            body["headers"] = headers
        return dumps(body)
