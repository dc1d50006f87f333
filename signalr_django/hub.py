"""The `Hub` base class and what a hub method sees of its connection.

A new hub instance serves each invocation and each lifecycle event, as in ASP.NET Core, so
nothing stored on `self` survives a call: keep per-connection state in `self.context.items`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload
from urllib.parse import parse_qsl

from .clients import ClientT, HubCallerClients, UntypedClient
from .groups import GroupManager
from .lifetime.manager import get_lifetime_manager
from .typed import _calls as _client_calls
from .typed import client_calls

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser

    from .core.connection import HubConnection

__all__ = ["ClientT", "Hub", "HubCallerContext", "UntypedClient", "hub_method"]

F = TypeVar("F", bound=Callable[..., Any])

_UNKNOWN: Any = object()


class HubCallerContext:
    """The calling connection: identity, user, request details and per-connection items."""

    __slots__ = ("__dict__", "_connection")

    def __init__(self, connection: HubConnection) -> None:
        self._connection = connection

    @property
    def connection_id(self) -> str:
        """The public id other code uses to address this connection."""
        return self._connection.connection_id

    @property
    def user(self) -> AbstractBaseUser | AnonymousUser:
        """The Django user (`AnonymousUser` when not authenticated)."""
        user: AbstractBaseUser | AnonymousUser = self._connection.user
        return user

    @property
    def user_identifier(self) -> str | None:
        """The id `clients.user(...)` addresses; None when the connection has no user."""
        return self._connection.user_identifier

    @property
    def items(self) -> dict[Any, Any]:
        """A dict that lives as long as the connection: the place for per-connection state."""
        return self._connection.items

    @property
    def scope(self) -> dict[str, Any]:
        """The ASGI scope of the request that opened the connection."""
        return self._connection.scope

    @property
    def transport(self) -> str:
        """`WebSockets`, `ServerSentEvents` or `LongPolling`."""
        return self._connection.transport

    @property
    def protocol(self) -> str:
        """The hub protocol the client chose: `json` or `messagepack`."""
        return self._connection.protocol.name

    @cached_property
    def headers(self) -> Mapping[str, str]:
        """Request headers, names lower-cased; repeated headers joined with commas."""
        headers: dict[str, str] = {}
        for raw_name, raw_value in self._connection.scope.get("headers", ()):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        return headers

    @cached_property
    def cookies(self) -> Mapping[str, str]:
        """Request cookies."""
        cookie = SimpleCookie()
        cookie.load(self.headers.get("cookie", ""))
        return {key: morsel.value for key, morsel in cookie.items()}

    @cached_property
    def query(self) -> Mapping[str, str]:
        """Query-string parameters of the connecting request (last value wins)."""
        raw = self._connection.scope.get("query_string", b"").decode("latin-1")
        return dict(parse_qsl(raw, keep_blank_values=True))

    def abort(self) -> None:
        """Close this connection from the server; the client is not told to reconnect."""
        self._connection.abort()


class Hub(Generic[ClientT]):
    """Subclass this and add methods: every public method can be called by clients.

    Methods may be `async def` or plain `def` (run in a worker thread, so the ORM works).
    `self.clients` and `self.groups` serve both: awaited in `async def`, called bare in
    `def`, where each call returns once it took effect (`signalr_django.sent`).
    An async generator method streams its items to the client. Parameters annotated with
    types are converted from the wire values; an argument that does not fit fails that
    invocation with a binding error and leaves the connection open.

    Declare the client methods the hub calls as a `typing.Protocol` and subclass
    `Hub[ThatProtocol]` to have them type-checked (`signalr_django.typed`).

    Set `options` to override `settings.SIGNALR` for this hub, for example
    `options = {"ENABLE_DETAILED_ERRORS": True}`, and `filters` to wrap this hub's calls
    and lifecycle events in hub filters (they run after `SIGNALR["HUB_FILTERS"]`).
    """

    options: ClassVar[Mapping[str, Any]] = {}
    filters: ClassVar[Sequence[Any]] = ()

    context: HubCallerContext

    def _bind(self, connection: HubConnection, context: HubCallerContext) -> None:
        self._connection = connection
        self.context = context

    @cached_property
    def clients(self) -> HubCallerClients[ClientT]:
        """Clients of this hub, with `caller`, `others` and `others_in_group` for this call.

        Typed as the hub's client Protocol for `Hub[ChatClient]`. Every call returns a
        `Sent`: `await` it in an `async def` method; in a plain `def` method the call has
        already been carried out when it returns (see `signalr_django.sent`).
        """
        hub_cls = type(self)
        calls = _client_calls.get(hub_cls, _UNKNOWN)
        if calls is _UNKNOWN:
            calls = client_calls(hub_cls)
        return HubCallerClients(
            get_lifetime_manager(hub_cls), self._connection.connection_id, calls
        )

    @cached_property
    def groups(self) -> GroupManager:
        """Add and remove connections to and from groups (awaited, or done in `def`)."""
        return GroupManager(get_lifetime_manager(type(self)))

    async def on_connected(self) -> None:
        """Called once the client completed its handshake; raise to refuse the connection."""

    async def on_disconnected(self, exception: Exception | None) -> None:
        """Called once the connection ended; `exception` is why, None for a clean close."""

    async def on_user_first_connected(self, user_id: str) -> None:
        """Called when `user_id` goes from no connection to one on any worker of the hub.

        Runs on the worker of that connection, bound to it (`self.context`), after its
        `on_connected`. See docs/presence.md for how "any worker" is decided and its limits.
        """

    async def on_user_last_disconnected(self, user_id: str) -> None:
        """Called when the last connection of `user_id` on any worker of the hub ended.

        Runs on the worker of that connection, bound to it, after its `on_disconnected`.
        """


HUB_METHOD_ATTR = "_signalr_hub_method"


@overload
def hub_method(func: F, /) -> F: ...


@overload
def hub_method(*, name: str | None = None, thread_sensitive: bool = True) -> Callable[[F], F]: ...


def hub_method(
    func: F | None = None, /, *, name: str | None = None, thread_sensitive: bool = True
) -> F | Callable[[F], F]:
    """Mark a hub method: `name` sets the wire name (matched case-insensitively).

    `thread_sensitive=False` lets a plain `def` method run in a thread pool in parallel
    with other sync code instead of Django's single sync thread.
    """

    def mark(f: F) -> F:
        setattr(f, HUB_METHOD_ATTR, {"name": name, "thread_sensitive": thread_sensitive})
        return f

    if func is not None:
        return mark(func)
    return mark
