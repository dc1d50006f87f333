"""How Python values travel in hub messages (protocol layer: pure).

The JSON protocol writes what System.Text.Json writes for the matching .NET types, so .NET
and TypeScript clients read our values naturally: `bytes` as base64, `datetime` as ISO 8601,
`UUID` and `Decimal` as strings, dataclasses as objects with camelCase property names,
mappings as objects with their keys unchanged, sets as arrays, enums as their values.
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


def json_default(value: Any) -> Any:
    """`json.dumps(default=...)`: convert what the json module cannot write by itself."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.datetime | dt.date | dt.time):
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
