"""Python type hints -> TypeScript types, as the values travel on the wire (pure).

The mapping follows what the hub protocols write (`protocol/values.py`), not what the
Python types are: a dataclass arrives as an object with camelCase property names, an enum
as its value, a set as an array, a `UUID` or `Decimal` as a string. Three types depend on
the hub protocol the client uses: with JSON, `bytes` are base64 text and `datetime` and
`timedelta` ISO-8601 / TimeSpan text; with MessagePack the official client hands the
application a `Uint8Array`, a `Date` and a number of 100 ns ticks.

Named types (dataclasses, TypedDicts, pydantic models, enums, `type X = ...` aliases)
become declarations the module exports once, whichever hub reaches them; everything else
is written inline. A type with no wire form the generator knows becomes `unknown`, with a
warning, so one odd annotation never stops the generation.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import re
import types
import typing
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..protocol.values import camel_case

PROTOCOLS = ("json", "messagepack")

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

# Words a TypeScript parameter or declaration cannot be named (strict mode included).
_RESERVED_WORDS = """
arguments await break case catch class const continue debugger default delete do else
enum eval export extends false finally for function if implements import in instanceof
interface let new null package private protected public return static super switch this
throw true try typeof var void while with yield any boolean number string symbol unknown
never object undefined
"""
RESERVED = frozenset(_RESERVED_WORDS.split())

_STRINGS: tuple[type, ...] = (dt.date, dt.time, uuid.UUID, decimal.Decimal)
_SEQUENCES = frozenset(("Sequence", "MutableSequence", "Iterable", "Collection", "Set"))
_SEQUENCES |= frozenset(("AbstractSet", "MutableSet", "Iterator", "Reversible"))
_MAPPINGS = frozenset(("Mapping", "MutableMapping"))


def identifier(name: str) -> str:
    """`name` as a TypeScript identifier: invalid characters become `_`, reserved words
    get a trailing `_`."""
    text = re.sub(r"[^A-Za-z0-9_$]", "_", name) or "_"
    if text[0].isdigit():
        text = "_" + text
    return text + "_" if text in RESERVED else text


def lower_first(name: str) -> str:
    """`ReceiveMessage` -> `receiveMessage` (TypeScript's member naming)."""
    return name[:1].lower() + name[1:]


def property_name(name: str) -> str:
    """An interface property: bare when it is an identifier, quoted otherwise."""
    return name if _IDENTIFIER.match(name) else json.dumps(name)


def _literal(value: Any) -> str | None:
    """A literal value's TypeScript form; None when it has none."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return json.dumps(value)
    return None


def _parenthesize(text: str) -> str:
    """Wrap a union or function type used as an array item (`(A | B)[]`)."""
    return f"({text})" if " | " in text or "=>" in text else text


def _union(parts: list[str]) -> str:
    seen: list[str] = []
    for part in parts:
        for arm in _split_union(part):
            if arm not in seen:
                seen.append(arm)
    if "unknown" in seen:
        return "unknown"
    return " | ".join(seen) if seen else "never"


def _split_union(text: str) -> list[str]:
    """Top-level arms of a union written by this module (so unions flatten)."""
    arms, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char in "([{<":
            depth += 1
        elif char in ")]}>":
            depth -= 1
        elif depth == 0 and text.startswith(" | ", index):
            arms.append(text[start:index])
            start = index + 3
    arms.append(text[start:])
    return arms


@dataclass(slots=True)
class Declaration:
    """One exported TypeScript declaration."""

    name: str
    source: str
    body: str = ""


@dataclass
class TypeMapper:
    """Maps annotations to TypeScript and collects the declarations they need.

    One mapper serves a whole generated module, so a type two hubs use is declared once
    and names stay unique across the module (a clash gets a numeric suffix, and a warning).
    """

    protocol: str = "json"
    warn: Callable[[str], None] = lambda message: None
    declarations: dict[Any, Declaration] = field(default_factory=dict)
    names: set[str] = field(default_factory=set)
    _warned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}")

    # Names ---------------------------------------------------------------------------

    def reserve(self, wanted: str, what: str) -> str:
        """A module-level name for `what`, unique in the module."""
        name = identifier(wanted)
        if name in self.names:
            index = 2
            while f"{name}{index}" in self.names:
                index += 1
            self._warn_once(f"{what}: the name {name} is taken; using {name}{index}.")
            name = f"{name}{index}"
        self.names.add(name)
        return name

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.warn(message)

    def unknown(self, annotation: Any, where: str) -> str:
        """`unknown`, with a warning saying which annotation had no TypeScript form."""
        self._warn_once(f"{where}: no TypeScript form for {_describe(annotation)}; using unknown.")
        return "unknown"

    # Mapping -------------------------------------------------------------------------

    def ts(self, annotation: Any, where: str, typevars: frozenset[Any] = frozenset()) -> str:
        """The TypeScript type of values annotated `annotation`.

        `where` names the place (`ChatHub.send_message(text)`) for warnings; `typevars`
        are the type parameters of the generic declaration being written, if any.
        """
        try:
            return self._ts(annotation, where, typevars)
        except RecursionError:
            return self.unknown(annotation, where)

    def _ts(self, annotation: Any, where: str, typevars: frozenset[Any]) -> str:
        if annotation is Any or annotation is object:
            return "unknown"
        if annotation is None or annotation is type(None):
            return "null"
        if isinstance(annotation, str | typing.ForwardRef):
            return self.unknown(annotation, where)
        if isinstance(annotation, typing.TypeVar):
            if annotation in typevars:
                return identifier(annotation.__name__)
            bound = annotation.__bound__
            return "unknown" if bound is None else self._ts(bound, where, typevars)
        simple = self._simple(annotation)
        if simple is not None:
            return simple
        supertype = getattr(annotation, "__supertype__", None)
        if supertype is not None:  # typing.NewType
            return self._ts(supertype, where, typevars)
        if type(annotation).__name__ == "TypeAliasType":  # `type X = ...` (PEP 695)
            return self._alias(annotation, where)
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is not None:
            return self._generic(annotation, origin, args, where, typevars)
        if isinstance(annotation, type):
            return self._class(annotation, where)
        return self.unknown(annotation, where)

    def _simple(self, annotation: Any) -> str | None:
        if annotation is str:
            return "string"
        if annotation is bool:
            return "boolean"
        if annotation is int or annotation is float:
            return "number"
        if annotation in (bytes, bytearray, memoryview):
            return "Uint8Array" if self.protocol == "messagepack" else "string"
        if annotation is dt.datetime:
            return "Date" if self.protocol == "messagepack" else "string"
        if annotation is dt.timedelta:
            return "number" if self.protocol == "messagepack" else "string"
        if annotation in _STRINGS:
            return "string"
        return None

    def _generic(
        self, annotation: Any, origin: Any, args: tuple[Any, ...], where: str, tv: frozenset[Any]
    ) -> str:
        if origin is typing.Union or origin is types.UnionType:
            return _union([self._ts(arm, where, tv) for arm in args])
        if origin is typing.Annotated or _qualifier(annotation):
            return self._ts(args[0], where, tv)
        if origin is typing.Literal:
            literals = [_literal(value) for value in args]
            if any(text is None for text in literals):
                return self.unknown(annotation, where)
            return _union([text for text in literals if text is not None])
        if origin is tuple:
            if not args:
                return "unknown[]"
            if len(args) == 2 and args[1] is Ellipsis:
                return _parenthesize(self._ts(args[0], where, tv)) + "[]"
            if args == ((),):
                return "[]"
            return "[" + ", ".join(self._ts(arg, where, tv) for arg in args) + "]"
        if origin in (list, set, frozenset) or _abc_name(origin) in _SEQUENCES:
            item = self._ts(args[0], where, tv) if args else "unknown"
            return _parenthesize(item) + "[]"
        if origin is dict or _abc_name(origin) in _MAPPINGS:
            value = self._ts(args[1], where, tv) if len(args) > 1 else "unknown"
            return f"Record<string, {value}>"
        if isinstance(origin, type) and _is_named(origin):
            name = self._class(origin, where, generic=True)
            if name == "unknown":
                return name
            return f"{name}<{', '.join(self._ts(arg, where, tv) for arg in args)}>"
        return self.unknown(annotation, where)

    def _class(self, cls: type, where: str, generic: bool = False) -> str:
        if cls in (list, tuple, set, frozenset):
            return "unknown[]"
        if cls is dict:
            return "Record<string, unknown>"
        if issubclass(cls, tuple) and hasattr(cls, "_fields"):  # NamedTuple: an array
            hints = _hints(cls)
            return "[" + ", ".join(self.ts(hints.get(f, Any), where) for f in cls._fields) + "]"
        if not _is_named(cls):
            return self.unknown(cls, where)
        found = self.declarations.get(cls)
        if found is None:
            found = Declaration(self.reserve(cls.__name__, _qualname(cls)), _qualname(cls))
            self.declarations[cls] = found  # before the body: recursive types refer to it
            found.body = self._declare(cls, found.name)
        params = getattr(cls, "__parameters__", ()) or ()
        if params and not generic:  # a generic class used bare: its parameters are unknown
            return f"{found.name}<{', '.join('unknown' for _ in params)}>"
        return found.name

    def _alias(self, alias: Any, where: str) -> str:
        found = self.declarations.get(alias)
        if found is not None:
            return found.name
        name = str(getattr(alias, "__name__", "Alias"))
        declaration = Declaration(self.reserve(name, name), name)
        self.declarations[alias] = declaration
        declaration.body = f"export type {declaration.name} = {self.ts(alias.__value__, name)};"
        return declaration.name

    # Declarations --------------------------------------------------------------------

    def _declare(self, cls: type, name: str) -> str:
        where = _qualname(cls)
        if issubclass(cls, enum.Enum):
            return self._enum(cls, name)
        params = tuple(getattr(cls, "__parameters__", ()) or ())
        generics = f"<{', '.join(identifier(p.__name__) for p in params)}>" if params else ""
        tv = frozenset(params)
        lines: list[str] = []
        if dataclasses.is_dataclass(cls):
            hints = _hints(cls, lambda: self.unknown(cls, where))
            for f in dataclasses.fields(cls):
                text = self.ts(hints.get(f.name, Any), f"{where}.{f.name}", tv)
                lines.append(f"  {property_name(camel_case(f.name))}: {text};")
        elif _is_typeddict(cls):
            hints = _hints(cls, lambda: self.unknown(cls, where), extras=True)
            optional: frozenset[str] = getattr(cls, "__optional_keys__", frozenset())
            for key, hint in hints.items():
                # Python 3.11 cannot see NotRequired in string annotations: look again.
                marker = _qualifier(hint)
                absent = marker == "NotRequired" or (key in optional and marker != "Required")
                mark = "?" if absent else ""
                text = self.ts(hint, f"{where}.{key}", tv)
                lines.append(f"  {property_name(key)}{mark}: {text};")
        else:  # pydantic model: its fields by serialization alias, as model_dump writes them
            for key, info in cls.model_fields.items():  # type: ignore[attr-defined]
                wire = getattr(info, "serialization_alias", None) or info.alias or key
                text = self.ts(info.annotation, f"{where}.{key}", tv)
                lines.append(f"  {property_name(wire)}: {text};")
        doc = doc_comment(cls)
        head = f"{doc}export interface {name}{generics} {{"
        return "\n".join([head, *lines, "}"])

    def _enum(self, cls: type[enum.Enum], name: str) -> str:
        doc = doc_comment(cls)
        if issubclass(cls, enum.Flag):  # combinations travel as numbers that no member lists
            return f"{doc}export type {name} = number;"
        members = [(member_name, _literal(m)) for member_name, m in cls.__members__.items()]
        if not members or any(text is None for _, text in members):
            return f"{doc}export type {name} = {self.unknown(cls, _qualname(cls))};"
        entries = "\n".join(f"  {property_name(key)}: {text}," for key, text in members)
        return (
            f"{doc}export const {name} = {{\n{entries}\n}} as const;\n"
            f"export type {name} = (typeof {name})[keyof typeof {name}];"
        )

    def render(self) -> str:
        """Every declaration collected so far, in the order they were reached."""
        return "\n\n".join(d.body for d in self.declarations.values())


def unwrap_awaitable(annotation: Any) -> Any:
    """`Awaitable[T]` / `Coroutine[..., T]` -> `T`: what a client result handler produces."""
    origin = typing.get_origin(annotation)
    name = _abc_name(origin)
    args = typing.get_args(annotation)
    if name == "Awaitable" and args:
        return args[0]
    if name == "Coroutine" and len(args) == 3:
        return args[2]
    if isinstance(origin, type) and issubclass(origin, Awaitable) and len(args) == 1:
        return args[0]  # `signalr_django.Sent[T]` and other one-parameter awaitables
    return annotation


def stream_item(annotation: Any) -> Any:
    """`AsyncIterator[T]` / `AsyncIterable[T]` / `AsyncGenerator[T, S]` -> `T` (else Any)."""
    if _abc_name(typing.get_origin(annotation)) in ("AsyncIterator", "AsyncIterable"):
        return (typing.get_args(annotation) or (Any,))[0]
    if _abc_name(typing.get_origin(annotation)) == "AsyncGenerator":
        return (typing.get_args(annotation) or (Any,))[0]
    return Any


def _abc_name(origin: Any) -> str | None:
    """The name of a `collections.abc` class (what `typing.Sequence[...]` has as origin)."""
    if isinstance(origin, type) and origin.__module__ == "collections.abc":
        return origin.__name__
    return None


def _is_typeddict(cls: type) -> bool:
    return typing.is_typeddict(cls) or hasattr(cls, "__required_keys__")


def _is_named(cls: type) -> bool:
    """A class the module declares: a dataclass, TypedDict, pydantic model or enum."""
    return (
        issubclass(cls, enum.Enum)
        or dataclasses.is_dataclass(cls)
        or _is_typeddict(cls)
        or isinstance(getattr(cls, "model_fields", None), dict)
    )


def _qualifier(annotation: Any) -> str | None:
    """`Required`, `NotRequired` or `ReadOnly` when `annotation` is wrapped in one."""
    origin = typing.get_origin(annotation)
    name = getattr(origin, "_name", None) or getattr(origin, "__name__", None)
    if name in ("Required", "NotRequired", "ReadOnly") and typing.get_args(annotation):
        return str(name)
    return None


def _hints(
    cls: Any, failed: Callable[[], object] | None = None, extras: bool = False
) -> dict[str, Any]:
    """Resolved annotations; the raw ones (strings stay unknown) when they do not resolve."""
    try:
        return typing.get_type_hints(cls, include_extras=extras)
    except Exception:
        if failed is not None:
            failed()
        return dict(getattr(cls, "__annotations__", {}))


def _qualname(cls: Any) -> str:
    return f"{getattr(cls, '__module__', '?')}.{getattr(cls, '__qualname__', cls)}"


def _describe(annotation: Any) -> str:
    if isinstance(annotation, type):
        return _qualname(annotation)
    return repr(annotation)


def doc_text(obj: Any) -> str:
    """The first paragraph of a class's own docstring ("" when it has none)."""
    text = obj.__dict__.get("__doc__") if hasattr(obj, "__dict__") else None
    if not text or not isinstance(text, str):
        return ""
    if dataclasses.is_dataclass(obj) and text.startswith(f"{getattr(obj, '__name__', '')}("):
        return ""  # the signature dataclasses writes when a class has no docstring
    paragraph = text.strip().split("\n\n")[0]
    return "\n".join(line.strip().replace("*/", "* /") for line in paragraph.splitlines())


def doc_comment(obj: Any) -> str:
    """`doc_text` as a TSDoc comment line (or lines), "" when there is no docstring."""
    lines = doc_text(obj).splitlines()
    if not lines:
        return ""
    if len(lines) == 1:
        return f"/** {lines[0]} */\n"
    return "/**\n" + "".join(f" * {line}\n" for line in lines) + " */\n"
