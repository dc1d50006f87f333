"""Typed clients: a hub declares the client methods it calls as a `typing.Protocol`.

`class ChatHub(Hub[ChatClient])` is the Python form of ASP.NET Core's `Hub<IChatClient>`:
`self.clients.all.receive_message(user, text)` type-checks against `ChatClient` and sends
the client method `ReceiveMessage`. This module holds the pure part shared by the runtime
proxies and the TypeScript generator: which Protocol a hub declares and the wire name of
each of its methods.

Wire names are the Python name in PascalCase (`receive_message` -> `ReceiveMessage`), the
convention of the official clients' examples; `@client_method(name="...")` on a Protocol
method sets another (a JavaScript handler registered as `"receiveMessage"`, say).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, TypeVar, overload

from .exceptions import HubConfigurationError

F = TypeVar("F", bound=Callable[..., Any])

CLIENT_METHOD_ATTR = "_signalr_client_method"


@overload
def client_method(func: F, /) -> F: ...


@overload
def client_method(*, name: str | None = None) -> Callable[[F], F]: ...


def client_method(func: F | None = None, /, *, name: str | None = None) -> F | Callable[[F], F]:
    """Mark a method of a client Protocol; `name` sets its wire name."""

    def mark(f: F) -> F:
        setattr(f, CLIENT_METHOD_ATTR, {"name": name})
        return f

    if func is not None:
        return mark(func)
    return mark


def pascal_case(name: str) -> str:
    """`receive_message` -> `ReceiveMessage`; a name without underscores keeps its case
    after the first letter (`receiveMessage` -> `ReceiveMessage`)."""
    parts = [part for part in name.split("_") if part]
    return "".join(part[0].upper() + part[1:] for part in parts)


def wire_name(func: Callable[..., Any]) -> str:
    """The client method name a Protocol method sends."""
    marked = getattr(func, CLIENT_METHOD_ATTR, None)
    if marked and marked.get("name"):
        return str(marked["name"])
    return pascal_case(func.__name__)


def client_interface(hub_cls: type) -> type | None:
    """The Protocol given as `Hub[...]`'s type argument anywhere in `hub_cls`'s bases.

    None for a hub declared as plain `Hub` (untyped clients: any method name goes).
    """
    from .hub import Hub

    for klass in hub_cls.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            if isinstance(origin, type) and issubclass(origin, Hub):
                args = typing.get_args(base)
                if args and isinstance(args[0], type):
                    return args[0]
    return None


def client_methods(interface: type) -> dict[str, Callable[..., Any]]:
    """Public methods a client Protocol declares, by Python name (inherited ones included)."""
    methods: dict[str, Callable[..., Any]] = {}
    for klass in reversed(interface.__mro__):
        if klass is object or klass is typing.Protocol or klass.__name__ == "Generic":
            continue
        for attr, value in vars(klass).items():
            if attr.startswith("_") or not callable(value):
                continue
            methods[attr] = value
    return methods


def returns_value(func: Callable[..., Any]) -> bool:
    """Whether a Protocol method asks for a client result rather than sending.

    `-> Awaitable[None]` (or `-> None`, or no annotation) sends; `-> Awaitable[str]`, the
    same with `Sent[...]`, or an `async def` returning a value is a client result.
    """
    try:
        annotation = typing.get_type_hints(func).get("return")
    except Exception:  # unresolvable forward reference: judge the annotation's text
        raw = getattr(func, "__annotations__", {}).get("return")
        if raw is None:
            return False
        text = str(raw).replace(" ", "")
        return not (text == "None" or text.endswith("[None]"))
    if not inspect.iscoroutinefunction(func):
        origin = typing.get_origin(annotation)
        if isinstance(origin, type) and issubclass(origin, Awaitable):
            args = typing.get_args(annotation)
            annotation = args[-1] if args else Any
    return annotation is not None and annotation is not type(None)


class ClientCall(NamedTuple):
    """How a proxy carries out one Protocol method: its wire name, and send or result."""

    wire_name: str
    returns_value: bool


# Attributes the client proxies have themselves: a Protocol method by one of these names
# would be shadowed by them.
RESERVED = frozenset({"send", "invoke", "connection_id"})


_calls: dict[type, Mapping[str, ClientCall] | None] = {}


def client_calls(hub_cls: type) -> Mapping[str, ClientCall] | None:
    """The calls the proxies of `hub_cls` accept by Python name; None for untyped hubs.

    Worked out once per hub class: each hub call builds its proxies from this table.
    """
    try:
        return _calls[hub_cls]
    except KeyError:
        pass
    interface = client_interface(hub_cls)
    if interface is None:
        _calls[hub_cls] = None
        return None
    calls: dict[str, ClientCall] = {}
    for name, func in client_methods(interface).items():
        if name in RESERVED:
            raise HubConfigurationError(
                f"{interface.__qualname__}.{name} clashes with the client proxies' own "
                f"`{name}`: give the Python method another name and keep the wire name with "
                f'@client_method(name="{wire_name(func)}").'
            )
        calls[name] = ClientCall(wire_name(func), returns_value(func))
    _calls[hub_cls] = calls
    return calls
