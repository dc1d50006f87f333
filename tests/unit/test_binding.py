"""Method discovery and argument binding."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import pytest

from signalr_django import Hub, hub_method
from signalr_django.dispatch.binding import converter_for
from signalr_django.dispatch.methods import describe_hub, normalize
from signalr_django.exceptions import BindingError, HubConfigurationError


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Item:
    item_name: str
    tags: list[str] = dataclasses.field(default_factory=list)
    when: dt.datetime | None = None


def convert(annotation: Any, value: Any) -> Any:
    converter = converter_for(annotation)
    return value if converter is None else converter(value)


def test_simple_types() -> None:
    """Scalars are checked strictly; conversions follow the wire formats."""
    assert convert(int, 3) == 3
    assert convert(float, 3) == 3.0
    assert convert(bytes, "aGk=") == b"hi"
    assert convert(dt.datetime, "2024-01-02T03:04:05Z") == dt.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC
    )
    assert convert(uuid.UUID, str(uuid.UUID(int=5))) == uuid.UUID(int=5)
    assert convert(Level, 2) is Level.HIGH
    assert convert(Level, "high") is Level.HIGH
    assert convert(Literal["a", "b"], "a") == "a"
    assert convert(Any, object) is object
    for annotation, value in [
        (int, "1"),
        (int, True),
        (int, 1.5),
        (str, 1),
        (bool, 0),
        (bytes, "***"),
        (dt.datetime, "yesterday"),
        (Level, 7),
        (int, None),
        (Literal["a"], "c"),
    ]:
        with pytest.raises(BindingError):
            convert(annotation, value)


def test_containers_unions_and_dataclasses() -> None:
    """Nested annotations bind recursively; dataclass keys match case-insensitively."""
    assert convert(list[int], [1, 2]) == [1, 2]
    assert convert(dict[str, list[int]], {"a": [1]}) == {"a": [1]}
    assert convert(int | None, None) is None
    assert convert(int | str, "x") == "x"
    assert convert(tuple[int, ...], [1, 2]) == (1, 2)
    item = convert(Item, {"ItemName": "x", "tags": ["t"], "when": "2024-01-01T00:00:00", "zz": 1})
    assert item == Item("x", ["t"], dt.datetime(2024, 1, 1))
    with pytest.raises(BindingError):
        convert(list[int], [1, "2"])
    with pytest.raises(BindingError):
        convert(Item, {"tags": []})  # missing required field


class Sample(Hub):
    async def send_message(self, user: str, text: str) -> None: ...

    def sync_method(self, n: int = 1) -> int:
        return n

    async def ticker(self, count: int) -> AsyncIterator[int]:
        yield count

    async def upload(self, label: str, items: AsyncIterator[int]) -> None: ...

    async def variadic(self, *values: Any) -> None: ...

    @hub_method(name="Explicit")
    async def renamed(self) -> None: ...

    async def _hidden(self) -> None: ...


def test_method_table() -> None:
    """Names match case-insensitively with or without underscores; private names are hidden."""
    table = describe_hub(Sample)
    assert table[normalize("SendMessage")].name == "send_message"
    assert table[normalize("sendMessage")] is table[normalize("send_message")]
    assert normalize("Explicit") in table and normalize("renamed") not in table
    assert normalize("_hidden") not in table and "onconnected" not in table
    sync = table["syncmethod"]
    assert (sync.is_async, sync.min_args, sync.max_args) == (False, 0, 1)
    assert table["ticker"].is_stream
    upload = table["upload"]
    assert (upload.stream_count, upload.max_args) == (1, 1)
    assert table["variadic"].max_args is None


def test_overloads_are_refused() -> None:
    """Two methods that resolve to the same name are a configuration error."""

    class Clash(Hub):
        async def do_it(self) -> None: ...

        async def doit(self) -> None: ...

    with pytest.raises(HubConfigurationError, match="Overloading is not supported"):
        describe_hub(Clash)
