"""Hub filter pipelines: resolving the configured filters and chaining them once per hub.

Order (as in ASP.NET Core): the global filters of `SIGNALR["HUB_FILTERS"]` in the order
listed, then the hub's own `filters`; the first runs outermost (it sees the call first and
the result last). Each entry is a filter instance (used as is), a class (instantiated once,
without arguments, when the list is resolved) or a dotted path to either. Global entries are
resolved once per settings, so a global filter instance is shared by every hub.

The chains are closures built when the hub's handler is made; a hook a filter does not
define (or inherits unchanged from `HubFilter`) is left out, and when no filter defines a
hook the dispatcher keeps its direct call, so hubs without filters pay nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from ..exceptions import HubConfigurationError
from ..filters.base import (
    ConnectedNext,
    DisconnectedNext,
    HubFilter,
    HubInvocationContext,
    HubLifetimeContext,
    InvokeNext,
)
from .methods import MethodDescriptor

HOOKS = ("invoke_method", "on_connected", "on_disconnected")


def _describe(entry: Any) -> str:
    if isinstance(entry, str):
        return repr(entry)
    if isinstance(entry, type):
        return entry.__qualname__
    return f"an instance of {type(entry).__qualname__}"


def resolve_filter(entry: Any, source: str) -> Any:
    """The filter instance an entry of a filter list names; raises HubConfigurationError."""
    value = entry
    if isinstance(entry, str):
        try:
            value = import_string(entry)
        except ImportError as exc:
            raise HubConfigurationError(
                f"Hub filter {entry!r} in {source} cannot be imported: {exc}"
            ) from exc
    if isinstance(value, type):
        try:
            value = value()
        except Exception as exc:
            raise HubConfigurationError(
                f"Hub filter {_describe(entry)} in {source} cannot be instantiated without "
                f"arguments ({type(exc).__name__}: {exc}); list an instance instead."
            ) from exc
    hooks = [name for name in HOOKS if getattr(value, name, None) is not None]
    if not hooks:
        raise HubConfigurationError(
            f"{_describe(entry)} in {source} is not a hub filter: it has none of "
            f"{', '.join(HOOKS)} (subclass signalr_django.filters.HubFilter)."
        )
    for name in hooks:
        if not inspect.iscoroutinefunction(getattr(value, name)):
            raise HubConfigurationError(
                f"{name} of hub filter {_describe(entry)} in {source} must be `async def`."
            )
    return value


def resolve_filters(entries: Any, source: str) -> tuple[Any, ...]:
    """Every entry of a filter list resolved, in order."""
    if isinstance(entries, str) or not isinstance(entries, Sequence):
        raise HubConfigurationError(
            f"{source} must be a list of hub filters (instances, classes or dotted paths)."
        )
    return tuple(resolve_filter(entry, source) for entry in entries)


_global: tuple[Any, tuple[Any, ...]] | None = None  # (the HubOptions they came from, the filters)


def global_filters() -> tuple[Any, ...]:
    """`SIGNALR["HUB_FILTERS"]` resolved, once per settings."""
    global _global
    from ..conf import global_options

    options = global_options()
    if _global is None or _global[0] is not options:
        _global = (options, resolve_filters(options.HUB_FILTERS, "SIGNALR['HUB_FILTERS']"))
    return _global[1]


_per_hub: dict[type, tuple[Any, ...]] = {}


def hub_filters(hub_cls: type) -> tuple[Any, ...]:
    """The filters of `hub_cls` in the order they run: global ones, then the hub's own."""
    return global_filters() + _own_filters(hub_cls)


def _own_filters(hub_cls: type) -> tuple[Any, ...]:
    """`hub_cls.filters` resolved, once per hub class."""
    own = _per_hub.get(hub_cls)
    if own is None:
        name = hub_cls.__qualname__
        if "HUB_FILTERS" in (getattr(hub_cls, "options", None) or {}):
            raise HubConfigurationError(
                f"{name}.options sets HUB_FILTERS, a global setting: list the hub's own "
                f"filters in {name}.filters (they run after the global ones)."
            )
        own = _per_hub[hub_cls] = resolve_filters(
            getattr(hub_cls, "filters", None) or (), f"{name}.filters"
        )
    return own


def validate_filters(hub_cls: type) -> None:
    """Resolve the filters of `hub_cls` now, so mistakes surface when the hub is mapped.

    The global list is checked too when Django's settings are ready (a URLconf imported
    before them still maps; the system check and the first connection report it then).
    """
    from django.conf import settings

    if settings.configured:
        hub_filters(hub_cls)
    else:
        _own_filters(hub_cls)


def _hooks(filters: Sequence[Any], name: str) -> list[Callable[..., Any]]:
    """The bound `name` hooks that do something: missing and inherited defaults left out."""
    default = getattr(HubFilter, name)
    found = []
    for item in filters:
        hook = getattr(item, name, None)
        if hook is None or getattr(type(item), name, None) is default:
            continue
        found.append(hook)
    return found


def _invoke_step(hook: Callable[..., Any], call_next: InvokeNext) -> InvokeNext:
    def step(context: HubInvocationContext) -> Awaitable[Any]:
        return hook(context, call_next)  # type: ignore[no-any-return]

    return step


def _connected_step(hook: Callable[..., Any], call_next: ConnectedNext) -> ConnectedNext:
    def step(context: HubLifetimeContext) -> Awaitable[None]:
        return hook(context, call_next)  # type: ignore[no-any-return]

    return step


def _disconnected_step(hook: Callable[..., Any], call_next: DisconnectedNext) -> DisconnectedNext:
    def step(context: HubLifetimeContext, exception: Exception | None) -> Awaitable[None]:
        return hook(context, exception, call_next)  # type: ignore[no-any-return]

    return step


def _hub_connected(context: HubLifetimeContext) -> Awaitable[None]:
    return context.hub.on_connected()


def _hub_disconnected(context: HubLifetimeContext, exception: Exception | None) -> Awaitable[None]:
    return context.hub.on_disconnected(exception)


def _method_call(descriptor: MethodDescriptor, sync_runner: Callable[..., Any]) -> InvokeNext:
    """The end of an invocation chain: the hub method itself."""
    func = descriptor.func
    if descriptor.is_stream:

        async def call_stream(context: HubInvocationContext) -> Any:
            produced = func(context.hub, *context.arguments)
            if hasattr(produced, "__await__"):
                produced = await produced
            return produced

        return call_stream
    if descriptor.is_async:

        def call_async(context: HubInvocationContext) -> Awaitable[Any]:
            return func(context.hub, *context.arguments)  # type: ignore[no-any-return]

        return call_async
    runner = sync_runner(descriptor)

    def call_sync(context: HubInvocationContext) -> Awaitable[Any]:
        return runner(context.hub, *context.arguments)  # type: ignore[no-any-return]

    return call_sync


@dataclass(slots=True)
class FilterPipeline:
    """The chains of one hub class; None where no filter defines the hook."""

    filters: tuple[Any, ...]
    invoke: dict[Callable[..., Any], InvokeNext] | None
    on_connected: ConnectedNext | None
    on_disconnected: DisconnectedNext | None


def build_pipeline(
    filters: tuple[Any, ...],
    methods: dict[str, MethodDescriptor],
    sync_runner: Callable[[MethodDescriptor], Callable[..., Any]],
) -> FilterPipeline:
    """Chain `filters` (outermost first) around every method and both lifecycle hooks."""
    invoke: dict[Callable[..., Any], InvokeNext] | None = None
    invoke_hooks = _hooks(filters, "invoke_method")
    if invoke_hooks:
        invoke = {}
        for descriptor in methods.values():
            chain = _method_call(descriptor, sync_runner)
            for hook in reversed(invoke_hooks):
                chain = _invoke_step(hook, chain)
            invoke[descriptor.func] = chain
    on_connected: ConnectedNext | None = None
    connected_hooks = _hooks(filters, "on_connected")
    if connected_hooks:
        on_connected = _hub_connected
        for hook in reversed(connected_hooks):
            on_connected = _connected_step(hook, on_connected)
    on_disconnected: DisconnectedNext | None = None
    disconnected_hooks = _hooks(filters, "on_disconnected")
    if disconnected_hooks:
        on_disconnected = _hub_disconnected
        for hook in reversed(disconnected_hooks):
            on_disconnected = _disconnected_step(hook, on_disconnected)
    return FilterPipeline(filters, invoke, on_connected, on_disconnected)
