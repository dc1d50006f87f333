"""The JSON hub protocol codec."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signalr_django.exceptions import HandshakeError, ProtocolError
from signalr_django.protocol import (
    Ack,
    CancelInvocation,
    Close,
    Completion,
    Invocation,
    JsonHubProtocol,
    Ping,
    Sequence,
    StreamInvocation,
    StreamItem,
)
from signalr_django.protocol.handshake import parse_handshake
from signalr_django.protocol.values import camel_case

P = JsonHubProtocol()


def test_server_output_is_byte_exact() -> None:
    """What the official clients receive, to the byte."""
    assert (
        P.encode(Completion("1", result=None)) == '{"type":3,"invocationId":"1","result":null}\x1e'
    )
    assert P.encode(Completion("2")) == '{"type":3,"invocationId":"2"}\x1e'
    assert P.encode(Completion("3", "boom")) == '{"type":3,"invocationId":"3","error":"boom"}\x1e'
    assert P.encode(Invocation("Receive", ["bob", "hi"])) == (
        '{"type":1,"target":"Receive","arguments":["bob","hi"]}\x1e'
    )
    assert P.encode(StreamItem("4", 5)) == '{"type":2,"invocationId":"4","item":5}\x1e'
    assert P.encode(Ping()) == '{"type":6}\x1e'
    assert P.encode(Close()) == '{"type":7}\x1e'
    assert P.encode(Close("x", allow_reconnect=True)) == (
        '{"type":7,"error":"x","allowReconnect":true}\x1e'
    )
    assert P.encode(Ack(3)) == '{"type":8,"sequenceId":3}\x1e'
    assert P.encode(Sequence(4)) == '{"type":9,"sequenceId":4}\x1e'


def test_non_ascii_is_escaped_so_frames_are_always_valid_utf8() -> None:
    """A lone surrogate from a client can be echoed without breaking the frame."""
    out = P.encode(Completion("1", result="é\ud800"))
    assert out.isascii()
    assert json.loads(out[:-1])["result"] == "é\ud800"


def test_parse_every_message_type() -> None:
    """Client messages of every type parse; unknown properties are ignored."""
    assert P.decode('{"type":1,"invocationId":"1","target":"a","arguments":[1],"x":0}') == (
        Invocation("a", [1], "1")
    )
    assert P.decode('{"type":1,"target":"a","arguments":[],"streamIds":["0"]}') == (
        Invocation("a", [], None, ["0"])
    )
    assert P.decode(
        '{"type":1,"target":"a","arguments":[],"invocationId":null,"streamIds":[],'
        '"headers":{"h":"v"}}'
    ) == Invocation("a", [], None, None, {"h": "v"})
    assert P.decode('{"type":4,"invocationId":"1","target":"a","arguments":[]}') == (
        StreamInvocation("1", "a", [])
    )
    assert P.decode('{"type":2,"invocationId":"1","item":null}') == StreamItem("1", None)
    completion = P.decode('{"type":3,"invocationId":"1","result":null}')
    assert isinstance(completion, Completion) and completion.has_result
    assert P.decode('{"type":5,"invocationId":"1"}') == CancelInvocation("1")
    assert P.decode('{"type":6}') == Ping()
    assert P.decode('{"type":7,"error":"e","allowReconnect":true}') == Close("e", True)
    assert P.decode('{"type":8,"sequenceId":2}') == Ack(2)
    assert P.decode('{"type":9,"sequenceId":2}') == Sequence(2)
    assert P.decode('{"type":42}') is None


@pytest.mark.parametrize(
    ("record", "error"),
    [
        ("{", "Error reading JSON."),
        ("[]", "Error reading JSON."),
        ("{}", "Missing required property 'type'."),
        ('{"type":"1"}', "Expected 'type' to be of type Integer."),
        ('{"type":1,"arguments":[]}', "Missing required property 'target'."),
        ('{"type":1,"target":"a"}', "Missing required property 'arguments'."),
        ('{"type":1,"target":"a","arguments":{}}', "Expected 'arguments' to be of type Array."),
        ('{"type":1,"target":"a","arguments":null}', "Expected 'arguments' to be of type Array."),
        ('{"type":1,"target":5,"arguments":{}}', "Expected 'target' to be of type String."),
        ('{"type":1,"target":null,"arguments":[]}', "Missing required property 'target'."),
        (
            '{"type":1,"target":"a","arguments":[],"invocationId":1}',
            "Expected 'invocationId' to be of type String.",
        ),
        (
            '{"type":1,"target":"a","arguments":[],"streamIds":[1]}',
            "Expected 'streamIds' to be an array of strings.",
        ),
        (
            '{"type":1,"target":"a","arguments":[],"headers":{"a":1}}',
            "Expected 'headers' to be an object of strings.",
        ),
        ('{"type":2,"invocationId":"1"}', "Missing required property 'item'."),
        (
            '{"type":3,"invocationId":"1","error":"e","result":1}',
            "The 'error' and 'result' properties are mutually exclusive.",
        ),
        ('{"type":5}', "Missing required property 'invocationId'."),
        ('{"type":8}', "Missing required property 'sequenceId'."),
        ("[" * 100000, "Error reading JSON."),
    ],
)
def test_malformed_messages(record: str, error: str) -> None:
    """Bad input raises ProtocolError with ASP.NET Core's wording, never anything else."""
    with pytest.raises(ProtocolError) as info:
        P.decode(record)
    assert str(info.value) == error


@given(st.text(max_size=200))
def test_decode_never_raises_anything_but_protocol_error(text: str) -> None:
    """Arbitrary text is either a message, ignored, or a ProtocolError."""
    try:
        P.decode(text)
    except ProtocolError:
        pass


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.text(min_size=1), st.lists(json_values, max_size=4), st.none() | st.text(min_size=1))
def test_invocation_round_trip(target: str, args: list[Any], invocation_id: str | None) -> None:
    """What we encode, we decode back to the same message."""
    message = Invocation(target, args, invocation_id)
    encoded = P.encode(message)
    assert encoded.endswith("\x1e") and "\x1e" not in encoded[:-1]
    assert P.decode(encoded[:-1]) == message


@given(st.text(min_size=1), json_values)
def test_completion_round_trip(invocation_id: str, result: Any) -> None:
    """Completions with results survive a round trip."""
    decoded = P.decode(P.encode(Completion(invocation_id, result=result))[:-1])
    assert isinstance(decoded, Completion)
    assert decoded.result == result and decoded.error is None


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Person:
    first_name: str
    birth_day: dt.date


def test_python_values_are_written_as_system_text_json_would() -> None:
    """bytes base64, datetimes ISO 8601, UUID/Decimal strings, dataclasses camelCase."""
    value = {
        "b": b"\x00\xff",
        "d": dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        "u": uuid.UUID(int=1),
        "m": decimal.Decimal("1.10"),
        "e": Color.RED,
        "p": Person("Ada", dt.date(1815, 12, 10)),
        "t": dt.timedelta(days=1, hours=2, microseconds=5),
        "s": frozenset([1]),
    }
    out = json.loads(P.encode(Completion("1", result=value))[:-1])["result"]
    assert out == {
        "b": "AP8=",
        "d": "2024-01-02T03:04:05Z",
        "u": "00000000-0000-0000-0000-000000000001",
        "m": "1.10",
        "e": "red",
        "p": {"firstName": "Ada", "birthDay": "1815-12-10"},
        "t": "1.02:00:00.0000050",
        "s": [1],
    }
    assert camel_case("already") == "already"
    with pytest.raises(TypeError, match="cannot be sent"):
        P.encode(Completion("1", result=object()))


def test_datetimes_are_written_as_system_text_json_writes_datetime() -> None:
    """UTC with Z, other offsets as +hh:mm, naive bare; fractions trimmed of trailing zeros."""
    cases = {
        dt.datetime(2000, 1, 1, tzinfo=dt.UTC): "2000-01-01T00:00:00Z",
        dt.datetime(2000, 1, 1, 0, 0, 0, 500000, tzinfo=dt.UTC): "2000-01-01T00:00:00.5Z",
        dt.datetime(2000, 1, 1, 0, 0, 0, 123456): "2000-01-01T00:00:00.123456",
        dt.datetime(2000, 1, 1, 0, 0, 0, 120): "2000-01-01T00:00:00.00012",
        dt.datetime(2000, 1, 1, 1, 2, 3, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))): (
            "2000-01-01T01:02:03+05:30"
        ),
        dt.datetime(1999, 12, 31, 23, 0, tzinfo=dt.timezone(-dt.timedelta(hours=8))): (
            "1999-12-31T23:00:00-08:00"
        ),
        dt.datetime(2000, 1, 1, tzinfo=dt.timezone(dt.timedelta(0), "GMT")): (
            "2000-01-01T00:00:00Z"
        ),
        dt.datetime(1, 1, 1): "0001-01-01T00:00:00",
    }
    for value, expected in cases.items():
        assert json.loads(P.encode(Completion("1", result=value))[:-1])["result"] == expected


def test_handshake_parsing() -> None:
    """protocol and version are required; detailed errors say why."""
    request = parse_handshake('{"protocol":"json","version":1,"extra":true}')
    assert (request.protocol, request.version) == ("json", 1)
    with pytest.raises(HandshakeError) as info:
        parse_handshake('{"version":1}', detailed=True)
    assert str(info.value) == (
        "An unexpected error occurred during connection handshake. InvalidDataException: "
        "Missing required property 'protocol'. Message content: {\"version\":1}"
    )
