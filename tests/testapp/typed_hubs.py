"""A hub with a typed client interface, for the generated TypeScript (tests/e2e/test_typescript.py).

It reaches every kind of type the generator declares (a dataclass that refers to itself, an
enum, a TypedDict with an optional key, a Literal) and every kind of call: invoke with a
default, a server-to-client stream, an upload stream, bytes and a client result.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import (
    Any,
    Generic,
    Literal,
    NamedTuple,
    NotRequired,
    Protocol,
    TypedDict,
    TypeVar,
)

from signalr_django import Hub
from signalr_django.typed import client_method


class Mood(enum.Enum):
    """How a message feels."""

    HAPPY = "happy"
    SAD = "sad"


@dataclass
class ChatMessage:
    """One message as the hub echoes it."""

    user_name: str
    text: str
    mood: Mood
    sent_at: dt.datetime
    tags: list[str] = field(default_factory=list)
    reply_to: ChatMessage | None = None


class Summary(TypedDict):
    """What an upload adds up to."""

    label: str
    count: int
    total: float
    note: NotRequired[str]


class ChatClient(Protocol):
    """What the hub calls on its clients."""

    def receive_message(self, message: ChatMessage) -> Awaitable[None]: ...

    @client_method(name="notify")
    def notify(self, text: str, level: Literal["info", "warning"]) -> Awaitable[None]: ...

    def get_answer(self, question: str) -> Awaitable[int]: ...


class TypedChatHub(Hub[ChatClient]):
    """Chat with typed clients."""

    async def send_message(self, user_name: str, text: str, mood: Mood = Mood.HAPPY) -> ChatMessage:
        """Echo a message to the caller as `ReceiveMessage`, and return it."""
        first = ChatMessage(
            user_name, "first", mood, dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
        )
        message = ChatMessage(
            user_name, text, mood, dt.datetime(2024, 1, 2, 3, 4, 6, tzinfo=dt.UTC), ["t"], first
        )
        await self.clients.caller.receive_message(message)
        return message

    async def greet(self, name: str, greeting: str = "Hello") -> str:
        return f"{greeting}, {name}!"

    async def countdown(self, start: int) -> AsyncIterator[int]:
        for value in range(start, 0, -1):
            yield value

    async def total(self, label: str, numbers: AsyncIterator[float]) -> Summary:
        count, total = 0, 0.0
        async for number in numbers:
            count += 1
            total += number
        return {"label": label, "count": count, "total": total}

    async def ask_answer(self, question: str) -> int:
        """A client result: the caller's `GetAnswer` handler answers."""
        return await self.clients.caller.get_answer(question)

    async def notify_me(self, text: str, level: Literal["info", "warning"]) -> None:
        await self.clients.caller.notify(text, level)

    def reverse_bytes(self, data: bytes) -> bytes:
        return data[::-1]


# Every kind of annotation the generator handles, for the strict compilation of its output
# (tests/e2e/test_typescript.py). Not mapped: only its TypeScript is used.

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Access(enum.Flag):
    READ = 1
    WRITE = 2


class Filters(TypedDict, total=False):
    query: str
    levels: list[Level]


class Span(NamedTuple):
    start: dt.date
    end: dt.date


class Opaque:
    """No wire form: written as unknown."""


class SinkClient(Protocol):
    def progress(self, done: int, total: int | None = None, *notes: str) -> None: ...

    async def choose(self, options: list[Mood]) -> Mood: ...

    def confirm(self, page: Page[ChatMessage]) -> Awaitable[bool | None]: ...


class KitchenSinkHub(Hub[SinkClient]):
    def send(self, new: str, default: int = 0, *more: float) -> dict[str, list[int | None]]:
        return {}

    def search(self, filters: Filters, span: Span, access: Access) -> Page[ChatMessage]:
        return Page([], None)

    def levels(self) -> tuple[Level, str, tuple[int, ...]]:
        return (Level.LOW, "", ())

    def raw(self, value: Opaque, anything: Any, data: bytes) -> dt.timedelta:
        return dt.timedelta()

    async def pages(self, size: int) -> AsyncIterator[Page[int]]:
        yield Page([1], None)

    async def merge(self, left: AsyncIterator[Span], right: AsyncIterator[Any]) -> list[Span]:
        return []

    def literal(self, mode: Literal["a", 1, True, None]) -> Literal[Mood.HAPPY]:
        return Mood.HAPPY
