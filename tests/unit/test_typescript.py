"""TypeScript generation: the type mapping, the hub wrappers, hub discovery and the command.

tests/e2e/test_typescript.py compiles the output with `tsc --strict` and runs it against a
server; these tests pin down what is written for each kind of annotation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from typing import (
    Annotated,
    Any,
    Generic,
    Literal,
    NamedTuple,
    NewType,
    NotRequired,
    Optional,
    Protocol,
    TypedDict,
    TypeVar,
    Union,
)

import pytest
from django.core.management import CommandError, call_command
from django.urls import include, path

from signalr_django import Hub, hub_method, map_hub
from signalr_django.typed import client_method
from signalr_django.typescript import MappedHub, TypeMapper, generate
from signalr_django.typescript.discovery import hubs_in, import_hubs
from signalr_django.typescript.types import identifier


def mapper(protocol: str = "json") -> tuple[TypeMapper, list[str]]:
    warnings: list[str] = []
    return TypeMapper(protocol=protocol, warn=warnings.append), warnings


def ts(annotation: Any, protocol: str = "json") -> str:
    types, warnings = mapper(protocol)
    text = types.ts(annotation, "test")
    assert not warnings, warnings
    return text


# Plain types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (str, "string"),
        (int, "number"),
        (float, "number"),
        (bool, "boolean"),
        (None, "null"),
        (type(None), "null"),
        (Any, "unknown"),
        (object, "unknown"),
        (dt.date, "string"),
        (dt.time, "string"),
        (uuid.UUID, "string"),
        (decimal.Decimal, "string"),
        (list[int], "number[]"),
        (Sequence[str], "string[]"),
        (set[str], "string[]"),
        (frozenset[int], "number[]"),
        (tuple[int, ...], "number[]"),
        (tuple[int, str], "[number, string]"),
        (list, "unknown[]"),
        (dict[str, int], "Record<string, number>"),
        (Mapping[str, list[float]], "Record<string, number[]>"),
        (dict, "Record<string, unknown>"),
        (Optional[str], "string | null"),  # noqa: UP045 - the spelling under test
        (Union[int, str], "number | string"),  # noqa: UP007 - the spelling under test
        (int | str | None, "number | string | null"),
        (int | Optional[int], "number | null"),  # noqa: UP045 - arms are flattened
        (list[int | None], "(number | null)[]"),
        (int | Any, "unknown"),
        (Literal["a", "b"], '"a" | "b"'),
        (Literal[1, True, None], "1 | true | null"),
        (Annotated[int, "meta"], "number"),
        (NewType("UserId", str), "string"),
    ],
)
def test_plain_types(annotation: Any, expected: str) -> None:
    """Builtins, containers, unions and literals are written inline."""
    assert ts(annotation) == expected


def test_protocol_decides_bytes_datetime_and_timedelta() -> None:
    """JSON carries base64 and ISO text; the MessagePack client hands over native values."""
    assert [ts(t) for t in (bytes, dt.datetime, dt.timedelta)] == ["string"] * 3
    assert [ts(t, "messagepack") for t in (bytes, dt.datetime, dt.timedelta)] == [
        "Uint8Array",
        "Date",
        "number",
    ]
    with pytest.raises(ValueError):
        TypeMapper(protocol="xml")


def test_unknown_types_warn_once_and_never_fail() -> None:
    """A class with no wire form is `unknown` with one warning naming the place."""

    class Opaque:
        pass

    types, warnings = mapper()
    assert types.ts(list[Opaque], "Hub.method(value)") == "unknown[]"
    assert types.ts(Opaque | None, "Hub.method(value)") == "unknown"
    assert len(warnings) == 1
    assert "Hub.method(value)" in warnings[0] and "Opaque" in warnings[0]
    assert types.ts("NotResolved", "Hub.other") == "unknown"
    assert len(warnings) == 2


def test_type_variables_outside_a_generic_declaration() -> None:
    """A bound type variable is its bound; an unbound one is unknown (no warning)."""
    assert ts(TypeVar("T")) == "unknown"
    assert ts(TypeVar("B", bound=str)) == "string"


# Declarations --------------------------------------------------------------------------


class Color(enum.Enum):
    """A colour."""

    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Access(enum.Flag):
    READ = 1
    WRITE = 2


@dataclasses.dataclass
class Node:
    """A tree node.

    Only the first paragraph becomes the comment.
    """

    node_name: str
    color: Color
    children: list[Node] = dataclasses.field(default_factory=list)
    parent_node: Node | None = None


T = TypeVar("T")


@dataclasses.dataclass
class Box(Generic[T]):
    item: T
    items: list[T]


class Movie(TypedDict, total=False):
    title: str
    year: int


class Album(TypedDict):
    title: str
    rating: NotRequired[float]


class Pair(NamedTuple):
    left: int
    right: str


class FakeField:
    """What pydantic's FieldInfo offers the generator."""

    def __init__(self, annotation: Any, alias: str | None = None) -> None:
        self.annotation = annotation
        self.alias = alias
        self.serialization_alias: str | None = None


class FakeModel:
    """Stands in for a pydantic model (pydantic is not a dependency)."""

    model_fields = {"user_id": FakeField(int, alias="userId"), "raw_name": FakeField(str)}


def test_dataclasses_are_interfaces_with_camel_case_properties() -> None:
    """Properties carry the wire names; a self-referencing type refers to itself."""
    types, warnings = mapper()
    assert types.ts(Node, "x") == "Node"
    assert types.render() == (
        "/** A tree node. */\n"
        "export interface Node {\n"
        "  nodeName: string;\n"
        "  color: Color;\n"
        "  children: Node[];\n"
        "  parentNode: Node | null;\n"
        "}\n\n"
        "/** A colour. */\n"
        "export const Color = {\n"
        '  RED: "red",\n'
        '  GREEN: "green",\n'
        "} as const;\n"
        "export type Color = (typeof Color)[keyof typeof Color];"
    )
    assert warnings == []


def test_enums() -> None:
    """Enums travel as their values; flags as numbers (combinations are not members)."""
    types, _ = mapper()
    types.ts(Level, "x")
    types.ts(Access, "x")
    text = types.render()
    assert "  LOW: 1,\n  HIGH: 2,\n} as const;" in text
    assert "export type Access = number;" in text
    assert ts(Literal[Color.RED]) == '"red"'


def test_generic_dataclasses() -> None:
    """A generic dataclass is a generic interface; used bare, its parameters are unknown."""
    types, _ = mapper()
    assert types.ts(Box[int], "x") == "Box<number>"
    assert types.ts(Box, "x") == "Box<unknown>"
    assert "export interface Box<T> {\n  item: T;\n  items: T[];\n}" in types.render()


def test_typeddicts_keep_their_keys_and_optional_ones() -> None:
    """Keys are written as they are; non-total and NotRequired keys are optional."""
    types, _ = mapper()
    types.ts(Movie, "x")
    types.ts(Album, "x")
    text = types.render()
    assert "export interface Movie {\n  title?: string;\n  year?: number;\n}" in text
    assert "export interface Album {\n  title: string;\n  rating?: number;\n}" in text


def test_named_tuples_are_tuples() -> None:
    """A NamedTuple travels as an array."""
    assert ts(Pair) == "[number, string]"


def test_pydantic_models_use_their_aliases() -> None:
    """Pydantic models are written by alias, as `model_dump(by_alias=True)` sends them."""
    types, _ = mapper()
    assert types.ts(FakeModel, "x") == "FakeModel"
    assert "export interface FakeModel {\n  userId: number;\n  raw_name: string;\n}" in (
        types.render()
    )


def test_name_clashes_get_a_suffix_and_a_warning() -> None:
    """Two classes of one name (from different places) both get declared."""
    first = dataclasses.make_dataclass("Item", [("a", int)])
    second = dataclasses.make_dataclass("Item", [("b", str)])
    types, warnings = mapper()
    assert types.ts(first, "x") == "Item"
    assert types.ts(second, "x") == "Item2"
    assert types.ts(first, "x") == "Item"
    assert len(warnings) == 1 and "Item2" in warnings[0]


def test_identifiers() -> None:
    """Names that TypeScript reserves or cannot parse are changed, never emitted as is."""
    assert identifier("new") == "new_"
    assert identifier("default") == "default_"
    assert identifier("user_id") == "user_id"
    assert identifier("2fa") == "_2fa"
    assert identifier("a-b") == "a_b"


# Hub wrappers --------------------------------------------------------------------------


class EdgeClient(Protocol):
    def plain(self, value: int, *rest: str) -> None: ...

    async def answer(self, question: str) -> list[int]: ...

    @client_method(name="customName")
    def renamed(self) -> Awaitable[None]: ...


class EdgeHub(Hub[EdgeClient]):
    """Edge cases."""

    def send(self, message: str) -> None:
        """A hub method named like the wrapper's `send` member."""

    @hub_method(name="Renamed_Method")
    def renamed(self, value: int = 1, *more: int, key: str = "") -> int:
        return value

    async def items(self, new: str, count: int) -> AsyncIterator[Node]:
        yield Node("x", Color.RED)

    async def upload(self, things: AsyncIterator[Color], label: str | None = None) -> None:
        async for _ in things:
            pass

    async def untyped(self, value):  # type: ignore[no-untyped-def]
        return value


class PlainHub(Hub):
    def ping(self) -> str:
        return "pong"


def test_hub_wrapper() -> None:
    """Wire names, optional and rest parameters, streams, uploads, handlers, clashes."""
    warnings: list[str] = []
    text = generate([MappedHub(EdgeHub, ("hubs/edge",))], warn=warnings.append)
    assert 'import type { HubConnection, IStreamResult, Subject } from "@microsoft/signalr";' in (
        text
    )
    assert " * Typed calls to `EdgeHub`. Mapped at `/hubs/edge`.\n *\n * Edge cases.\n" in text
    # A hub method clashing with a fixed member keeps its wire name under another name.
    assert "  send_(message: string): Promise<void> {\n" in text
    assert 'return this.connection.invoke<void>("Send", message);' in text
    assert any("send_" in warning for warning in warnings)
    # An explicit wire name is used as it is; trailing undefined arguments are left off.
    assert "  renamed(value?: number, ...more: number[]): Promise<number> {" in text
    assert 'invoke<number>("Renamed_Method", ...trimmed([value, ...more]));' in text
    # Streams and uploads; reserved words as parameter names.
    assert "  items(new_: string, count: number): IStreamResult<Node> {" in text
    assert 'return this.connection.stream<Node>("Items", new_, count);' in text
    assert "  upload(things: Subject<Color>, label?: string | null): Promise<void> {" in text
    assert "  untyped(value: unknown): Promise<unknown> {" in text
    # Streams have no `send` variant.
    assert "    upload: (things: Subject<Color>, label?: string | null): Promise<void> =>" in text
    assert "    items:" not in text
    # The client interface, handlers by wire name, client results.
    assert "export interface EdgeClient {\n" in text
    assert "  plain(value: number, ...rest: string[]): void;\n" in text
    assert "  answer(question: string): number[] | Promise<number[]>;\n" in text
    assert "  renamed(): void;\n" in text
    assert "  onCustomName(handler: () => void): () => void {\n" in text
    assert 'this.connection.on("customName", handler);' in text
    assert "  onAnswer(handler: (question: string) => number[] | Promise<number[]>)" in text
    assert "      this.onCustomName((...args) => impl.renamed(...args))," in text


def test_untyped_hubs_have_no_handlers() -> None:
    """A plain `Hub` declares no client methods: no interface, no `registerHandlers`."""
    text = generate([MappedHub(PlainHub)])
    assert "registerHandlers" not in text
    assert "import type { HubConnection }" in text
    assert "trimmed" not in text
    assert "/** Typed calls to `PlainHub`. */\nexport class PlainHubClient {" in text


def test_shared_types_and_interfaces_are_declared_once() -> None:
    """Two hubs with one client interface and one dataclass: one declaration each."""

    class OtherEdgeHub(EdgeHub):
        pass

    text = generate([MappedHub(EdgeHub), MappedHub(OtherEdgeHub)])
    assert text.count("export interface EdgeClient ") == 1
    assert text.count("export interface Node ") == 1
    assert "registerHandlers(impl: EdgeClient)" in text
    assert "export class OtherEdgeHubClient {" in text


# Discovery and the command -------------------------------------------------------------


def test_hubs_in_the_test_projects_asgi_application() -> None:
    """ProtocolTypeRouter, middleware and URLRouter are walked; routes are collected."""
    from tests.asgi import application
    from tests.testapp.hubs import TestHub
    from tests.testapp.typed_hubs import TypedChatHub

    found = {hub.hub_cls: hub.routes for hub in hubs_in([application])}
    assert found[TestHub] == ("hubs/test",)
    assert found[TypedChatHub] == ("hubs/typed",)


def test_hubs_under_an_include() -> None:
    """URL resolvers add their literal prefix."""
    patterns = [path("api/", include([map_hub("hubs/plain", PlainHub)]))]
    assert hubs_in([patterns]) == [MappedHub(PlainHub, ("api/hubs/plain",))]


def test_import_hubs_refuses_what_is_not_a_hub() -> None:
    """A dotted path that does not import, or is not a hub, is a clear error."""
    with pytest.raises(ValueError, match="does not import"):
        import_hubs(["tests.testapp.nowhere.Hub"])
    with pytest.raises(ValueError, match="not a Hub subclass"):
        import_hubs(["tests.testapp.typed_hubs.ChatMessage"])
    known = [MappedHub(PlainHub, ("x",))]
    assert import_hubs(["tests.unit.test_typescript.PlainHub"], known) == known


def test_command_writes_to_stdout_and_reports_bad_paths() -> None:
    """Dotted paths select hubs; mistakes are CommandErrors, not tracebacks."""
    out = io.StringIO()
    call_command("signalr_typescript", "tests.testapp.typed_hubs.TypedChatHub", stdout=out)
    text = out.getvalue()
    assert "export class TypedChatHubClient {" in text
    assert " * Typed calls to `TypedChatHub`. Mapped at `/hubs/typed`." in text
    assert "export class TestHubClient" not in text
    with pytest.raises(CommandError, match="not a Hub subclass"):
        call_command("signalr_typescript", "tests.testapp.typed_hubs.Mood", stdout=io.StringIO())


@dataclasses.dataclass
class Subject:
    topic: str


class SubjectHub(Hub):
    def learn(self, subject: Subject, lessons: AsyncIterator[str]) -> None:
        pass


def test_types_named_like_the_modules_own_names_are_renamed() -> None:
    """A dataclass named `Subject` does not shadow the client's `Subject` import."""
    warnings: list[str] = []
    text = generate([MappedHub(SubjectHub)], warn=warnings.append)
    assert "export interface Subject2 {" in text
    assert "learn(subject: Subject2, lessons: Subject<string>): Promise<void>" in text
    assert len(warnings) == 1


def test_discovery_survives_applications_it_does_not_know() -> None:
    """A property that raises, or a loop between applications, does not stop the walk."""

    class Hostile:
        @property
        def inner(self) -> Any:
            raise RuntimeError("not configured")

    class Loop:
        def __init__(self) -> None:
            self.app: Any = self
            self.application = [Hostile(), map_hub("hubs/plain", PlainHub)]

    assert hubs_in([Loop()]) == [MappedHub(PlainHub, ("hubs/plain",))]


def test_type_aliases_are_declared() -> None:
    """`type X = ...` (TypeAliasType) becomes an exported type of the same name."""
    from typing_extensions import TypeAliasType

    scores = TypeAliasType("Scores", dict[str, list[int]])
    types, warnings = mapper()
    assert types.ts(list[scores], "x") == "Scores[]"
    assert types.render() == "export type Scores = Record<string, number[]>;"
    assert warnings == []


def test_check_compares_with_the_file(tmp_path: Any) -> None:
    """`--check` passes on a file just written and fails once it differs."""
    out = tmp_path / "hubs.ts"
    hub = "tests.testapp.typed_hubs.TypedChatHub"
    quiet = {"stdout": io.StringIO(), "stderr": io.StringIO()}
    call_command("signalr_typescript", hub, out=str(out), **quiet)
    call_command("signalr_typescript", hub, out=str(out), check=True, **quiet)
    out.write_text(out.read_text() + "// edited\n")
    with pytest.raises(CommandError, match="out of date"):
        call_command("signalr_typescript", hub, out=str(out), check=True, **quiet)
    with pytest.raises(CommandError, match="needs --out"):
        call_command("signalr_typescript", hub, check=True, **quiet)
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("signalr_typescript", hub, out=str(tmp_path / "none.ts"), check=True, **quiet)
