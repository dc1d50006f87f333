"""Hub filters: middleware around hub method invocations and connection lifecycle events.

The equivalent of ASP.NET Core's `IHubFilter`. A filter has up to three async hooks, each
given a context and `call_next`, the rest of the pipeline (the next filter, and finally the
hub method or lifecycle hook itself):

- `invoke_method(context, call_next)` wraps every hub method call. Return
  `await call_next(context)` to run the method, return something else to short-circuit or
  replace the result, change `context.arguments` (or pass a copy made with
  `dataclasses.replace`) to change what the method gets, or catch what `call_next` raises and
  raise a `HubException` to send the caller a message of your choosing.
- `on_connected(context, call_next)` wraps `Hub.on_connected`; raising refuses the
  connection exactly as a raising `on_connected` does.
- `on_disconnected(context, exception, call_next)` wraps `Hub.on_disconnected`.

Subclass `HubFilter` and override the hooks you need: the defaults only call next, and the
pipeline leaves out hooks a filter does not override, so an unused hook costs nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..hub import Hub, HubCallerContext


@dataclass(slots=True)
class HubInvocationContext:
    """One call of a hub method, as the filters see it.

    `hub_method` is the function defined on the hub class (not bound), so a filter can read
    attributes a decorator set on it; `method_name` is the hub method's name (its
    `@hub_method(name=...)` when set). `arguments` are the bound values in parameter order
    (converted per the annotations; a client-to-server stream parameter holds its stream
    object): a filter may assign a new list, or change it in place, before `call_next`.
    `call_next` always calls the method being dispatched, with this context's `hub` and
    `arguments`.
    """

    context: HubCallerContext
    hub: Hub
    hub_method: Callable[..., Any]
    method_name: str
    arguments: list[Any]


@dataclass(slots=True)
class HubLifetimeContext:
    """A connection's `on_connected` or `on_disconnected`, as the filters see it."""

    context: HubCallerContext
    hub: Hub


InvokeNext = Callable[[HubInvocationContext], Awaitable[Any]]
"""`call_next` of `invoke_method`: runs the rest of the pipeline and returns its result."""

ConnectedNext = Callable[[HubLifetimeContext], Awaitable[None]]
"""`call_next` of `on_connected`."""

DisconnectedNext = Callable[[HubLifetimeContext, "Exception | None"], Awaitable[None]]
"""`call_next` of `on_disconnected`: pass the exception on (or another, or None)."""


class HubFilter:
    """Base class of hub filters: every hook calls next; override the ones you need.

    One filter instance serves every call (filters given as classes are instantiated once),
    so keep per-connection state in `context.context.items` and per-call state in locals.
    """

    async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
        """Wraps a hub method call; returns what the caller receives."""
        return await call_next(context)

    async def on_connected(self, context: HubLifetimeContext, call_next: ConnectedNext) -> None:
        """Wraps `Hub.on_connected`; raise to refuse the connection."""
        await call_next(context)

    async def on_disconnected(
        self,
        context: HubLifetimeContext,
        exception: Exception | None,
        call_next: DisconnectedNext,
    ) -> None:
        """Wraps `Hub.on_disconnected`; `exception` is why the connection ended."""
        await call_next(context, exception)
