"""Hub method discovery: which methods clients may call and how to call them.

`describe_hub` runs once per hub class and builds a table keyed by the normalised name
(lower case, underscores removed), so `SendMessage`, `sendMessage` and `send_message` all
reach `send_message`. Private names, dunder names, the lifecycle hooks and everything the
`Hub` base class defines are never callable.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..exceptions import HubConfigurationError
from .binding import Converter, converter_for

_AUTH_ATTR = "_signalr_authorize"


def normalize(name: str) -> str:
    """The lookup key of a method name: case-insensitive, underscores ignored."""
    return name.lower().replace("_", "")


@dataclass(slots=True)
class Parameter:
    """One bindable parameter."""

    name: str
    convert: Converter | None
    required: bool
    is_stream: bool = False
    item_convert: Converter | None = None


@dataclass(slots=True)
class MethodDescriptor:
    """What the dispatcher needs to know about one hub method."""

    name: str
    func: Callable[..., Any]
    is_async: bool
    is_stream: bool
    parameters: list[Parameter]
    min_args: int
    max_args: int | None
    needs_binding: bool
    stream_count: int
    authorization: Any
    thread_sensitive: bool


def _is_stream_annotation(annotation: Any) -> bool:
    origin = typing.get_origin(annotation) or annotation
    return origin in (AsyncIterator, AsyncIterable) or (
        isinstance(origin, type) and origin.__name__ in ("AsyncIterator", "AsyncIterable")
    )


def _describe(name: str, func: Callable[..., Any], authorization: Any) -> MethodDescriptor:
    from ..hub import HUB_METHOD_ATTR

    marks = getattr(func, HUB_METHOD_ATTR, None) or {}
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise HubConfigurationError(
            f"Cannot resolve the annotations of hub method {func.__qualname__}: {exc}"
        ) from exc
    params: list[Parameter] = []
    max_args: int | None = 0
    min_args = 0
    for index, param in enumerate(signature.parameters.values()):
        if index == 0:
            continue  # self
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            max_args = None
            continue
        if param.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, Any)
        if _is_stream_annotation(annotation):
            item_type = (typing.get_args(annotation) or (Any,))[0]
            params.append(Parameter(param.name, None, True, True, converter_for(item_type)))
            continue
        required = param.default is inspect.Parameter.empty
        params.append(Parameter(param.name, converter_for(annotation), required))
    value_params = [p for p in params if not p.is_stream]
    if max_args is not None:
        max_args = len(value_params)
    min_args = sum(1 for p in value_params if p.required)
    return MethodDescriptor(
        name=marks.get("name") or name,
        func=func,
        is_async=inspect.iscoroutinefunction(func),
        is_stream=inspect.isasyncgenfunction(func)
        or _is_stream_annotation(hints.get("return", None)),
        parameters=params,
        min_args=min_args,
        max_args=max_args,
        needs_binding=any(p.convert is not None or p.is_stream for p in params)
        or min_args != len(value_params),
        stream_count=len(params) - len(value_params),
        authorization=getattr(func, _AUTH_ATTR, None) or authorization,
        thread_sensitive=marks.get("thread_sensitive", True),
    )


_tables: dict[type, dict[str, MethodDescriptor]] = {}


def describe_hub(hub_cls: type) -> dict[str, MethodDescriptor]:
    """The method table of `hub_cls`, built once and cached."""
    table = _tables.get(hub_cls)
    if table is not None:
        return table
    from ..hub import Hub

    reserved = set(dir(Hub))
    hub_auth = getattr(hub_cls, _AUTH_ATTR, None)
    table = {}
    seen: set[str] = set()
    for klass in hub_cls.__mro__:
        if klass is Hub or not issubclass(klass, Hub):
            continue
        for attr, value in vars(klass).items():
            if attr in seen:
                continue
            seen.add(attr)
            if attr.startswith("_") or attr in reserved:
                continue
            if not inspect.isfunction(value):
                continue
            descriptor = _describe(attr, value, hub_auth)
            key = normalize(descriptor.name)
            if key in table:
                raise HubConfigurationError(
                    f"Duplicate definitions of '{descriptor.name}' on {hub_cls.__qualname__}: "
                    f"'{table[key].func.__name__}' and '{attr}' resolve to the same name. "
                    "Overloading is not supported; rename one or set @hub_method(name=...)."
                )
            table[key] = descriptor
    _tables[hub_cls] = table
    return table
