"""How Python values travel in hub messages (protocol layer: pure).

The JSON protocol writes what System.Text.Json writes for the matching .NET types, so .NET
and TypeScript clients read our values naturally: `bytes` as base64, `datetime` as ISO 8601,
`UUID` and `Decimal` as strings, dataclasses as objects with camelCase property names,
mappings as objects with their keys unchanged, sets as arrays, enums as their values.

The MessagePack protocol writes what the .NET MessagePack resolver writes where MessagePack
has a native form (`bytes` as bin, `datetime` as the timestamp extension, `timedelta` as
TimeSpan ticks) and otherwise exactly what the JSON protocol writes, so a hub sends the same
shapes to both kinds of client (see `msgpack_default`).
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Callable, Mapping
from typing import Any


def camel_case(name: str) -> str:
    """`user_name` -> `userName`: the default .NET property naming policy for hub payloads."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest if part)


_FIELD_NAMES: dict[type, tuple[tuple[str, str], ...]] = {}


def dataclass_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(attribute, wire name) pairs of a dataclass, computed once per class."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = tuple((f.name, camel_case(f.name)) for f in dataclasses.fields(cls))
        _FIELD_NAMES[cls] = names
    return names


def _timedelta(value: dt.timedelta) -> str:
    """.NET TimeSpan's constant format: `[-][d.]hh:mm:ss[.fffffff]`."""
    total = value // dt.timedelta(microseconds=1)
    sign = "-" if total < 0 else ""
    total = abs(total)
    seconds, micros = divmod(total, 1_000_000)
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    text = f"{sign}{f'{days}.' if days else ''}{hrs:02}:{mins:02}:{secs:02}"
    return f"{text}.{micros * 10:07}" if micros else text


def _datetime(value: dt.datetime) -> str:
    """System.Text.Json's DateTime form: UTC ends in `Z`, other offsets in `+hh:mm`, naive
    (.NET's unspecified kind) in nothing; the fraction has no trailing zeros (.NET writes up
    to 7 digits, Python has 6)."""
    text = f"{value.year:04}-{value.month:02}-{value.day:02}T"
    text += f"{value.hour:02}:{value.minute:02}:{value.second:02}"
    if value.microsecond:
        text += "." + f"{value.microsecond:06}".rstrip("0")
    offset = value.utcoffset()
    if offset is None:
        return text
    if not offset:
        return text + "Z"
    sign = "-" if offset < dt.timedelta(0) else "+"
    minutes = abs(offset) // dt.timedelta(minutes=1)
    return f"{text}{sign}{minutes // 60:02}:{minutes % 60:02}"


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)`: convert what the json module cannot write by itself."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {wire: getattr(value, attr) for attr, wire in dataclass_fields(type(value))}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, dt.timedelta):
        return _timedelta(value)
    dump: Callable[..., Any] | None = getattr(value, "model_dump", None)
    if callable(dump):  # pydantic models
        return dump(mode="json", by_alias=True)
    if hasattr(value, "__iter__"):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} cannot be sent in a hub message")


_MICROSECOND = dt.timedelta(microseconds=1)


def msgpack_default(value: Any) -> Any:
    """`msgpack.Packer(default=..., datetime=True)`: convert what msgpack cannot write itself.

    Called only for values msgpack has no native form for, so the common types cost nothing.
    Deliberate choices, documented because they differ from the .NET server's defaults:
    enums are written as their value (.NET writes their name) and dataclasses as maps with the
    camelCase keys of the JSON protocol (.NET writes the unmodified C# property name), because
    the JavaScript client hands both straight to the application, which must see the same
    payload whichever protocol it negotiated. `date`, `time`, `UUID` and `Decimal` are strings.
    """
    if isinstance(value, dt.datetime):
        # The packer writes only exact, aware datetimes as timestamps; .NET writes a DateTime
        # of unspecified kind as if it were UTC, so a naive datetime is taken to be UTC.
        if type(value) is not dt.datetime or value.tzinfo is None:
            value = dt.datetime(
                value.year,
                value.month,
                value.day,
                value.hour,
                value.minute,
                value.second,
                value.microsecond,
                value.tzinfo or dt.UTC,
            )
        return value
    if isinstance(value, int):  # msgpack calls back only for ints beyond 64 bits
        raise ValueError(f"The integer {value} does not fit in 64 bits and cannot be sent")
    if isinstance(value, dt.timedelta):  # .NET TimeSpan: an Int64 count of 100 ns ticks
        return value // _MICROSECOND * 10
    dump: Callable[..., Any] | None = getattr(value, "model_dump", None)
    if callable(dump) and not isinstance(value, type):  # pydantic: keep datetimes and bytes
        return dump(mode="python", by_alias=True)
    return json_default(value)
