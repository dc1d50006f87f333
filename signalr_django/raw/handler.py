"""`RawConnectionHandler`: what the transports see of one mapped connection handler.

It offers the transports the same surface as a hub's `HubConnectionHandler` (options, the
authorization target, the live connections, the backplane used to forward HTTP-transport
requests to the worker that owns a connection, spent ids), so negotiate, WebSockets,
Server-Sent Events, long polling, forwarding and ownership serve both without a fork.
"""

from __future__ import annotations

import inspect
import logging
import time
import weakref
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from ..conf import DEFAULTS, HubOptions, hub_options
from ..dispatch.dispatcher import ClientClosed
from ..dispatch.handler import ConnectionRefused, ServerShutdown
from ..exceptions import HubConfigurationError
from ..lifetime import names
from ..lifetime.backplane import Backplane
from ..protocol import Close, TransferFormat
from ..server.outbound import Outbound
from .connection import CLOSE_ERROR, Connection, ConnectionHandler, log_failure
from .session import RawSession

logger = logging.getLogger(__name__)

CALLBACKS = ("on_connected", "on_message", "on_disconnected")


class RawRegistry:
    """The live connections of one mapped handler in this process, and its backplane."""

    __slots__ = ("backplane", "connections", "key")

    def __init__(self, key: str, backplane: Backplane | None) -> None:
        self.key = key
        self.backplane = backplane
        self.connections: dict[str, Connection] = {}


def validate(handler_cls: Any, overrides: dict[str, Any], route: str) -> None:
    """Raise HubConfigurationError for a class or option `map_connection` cannot serve."""
    if not (isinstance(handler_cls, type) and issubclass(handler_cls, ConnectionHandler)):
        raise HubConfigurationError(
            f"map_connection({route!r}, ...) needs a ConnectionHandler subclass, "
            f"not {handler_cls!r}."
        )
    for name in CALLBACKS:
        if not inspect.iscoroutinefunction(getattr(handler_cls, name)):
            raise HubConfigurationError(
                f"{handler_cls.__qualname__}.{name} must be a coroutine function (async def)."
            )
    DEFAULTS.with_overrides(dict(handler_cls.options or {}), f"{handler_cls.__qualname__}.options")
    DEFAULTS.with_overrides(overrides, f"map_connection({route!r})")


class RawConnectionHandler:
    """Drives the connections of one `map_connection` route."""

    def __init__(
        self, handler_cls: type[ConnectionHandler], route: str, overrides: dict[str, Any]
    ) -> None:
        # The transports authorize against `hub_cls` (its `@authorize` requirement).
        self.hub_cls: type = handler_cls
        self.route = route
        self._overrides = {**overrides, "ALLOW_STATEFUL_RECONNECTS": False}
        self._base: HubOptions | None = None
        self._options: HubOptions | None = None
        from ..lifetime.default import default_backplane

        name = f"connection:{handler_cls.__module__}.{handler_cls.__qualname__}:{route}"
        self.lifetime = RawRegistry(names.hub_key(name), default_backplane())
        self.app = handler_cls()
        self.app.connections = MappingProxyType(self.lifetime.connections)
        # Stateful reconnect is a hub protocol feature: nothing is ever resumable here.
        self.resumable: dict[str, Any] = {}
        self.ended_ids: dict[str, float] = {}
        # Long-polling ids ended by DELETE: later requests get 404, as in ASP.NET Core.
        self.deleted_ids: dict[str, float] = {}
        self.forwarding_ready = False
        # Names this route to other workers (forwarded requests, signed identities).
        self.endpoint_key = self.lifetime.key
        if self.options.CLOSE_ON_AUTHENTICATION_EXPIRATION:
            raise HubConfigurationError(
                f"map_connection({route!r}): CLOSE_ON_AUTHENTICATION_EXPIRATION is a hub "
                "feature; connection handlers can close a connection themselves "
                "(connection.close())."
            )
        _handlers.add(self)

    @property
    def options(self) -> HubOptions:
        """The class's and the route's options over the settings (stateful reconnect off)."""
        base = hub_options(self.hub_cls)
        if base is not self._base or self._options is None:
            self._options = base.with_overrides(self._overrides, f"map_connection({self.route!r})")
            self._base = base
        return self._options

    def new_session(
        self,
        *,
        connection_id: str,
        scope: dict[str, Any],
        user: Any,
        transport: str,
        formats: tuple[TransferFormat, ...],
        outbound: Outbound,
        on_abort: Callable[[], None] | None = None,
        stateful: bool = False,
    ) -> RawSession:
        """A session for a connection starting on a transport."""
        return RawSession(
            self,
            connection_id=connection_id,
            scope=scope,
            user=user,
            transport=transport,
            formats=formats,
            outbound=outbound,
            on_abort=on_abort,
        )

    def token_spent(self, connection_id: str) -> bool:
        """Whether a connection with this id already ran here and ended."""
        return connection_id in self.ended_ids

    def was_deleted(self, connection_id: str) -> bool:
        """Whether the client ended this connection with DELETE."""
        return connection_id in self.deleted_ids

    def mark_deleted(self, connection_id: str) -> None:
        """Remember a DELETE for as long as the connection's token could still be used."""
        now = time.monotonic()
        deleted = self.deleted_ids
        deleted[connection_id] = now + self.options.DISCONNECT_TIMEOUT + 10
        if len(deleted) > 64 and len(deleted) % 64 == 0:
            for key in [k for k, expiry in deleted.items() if expiry < now]:
                del deleted[key]

    async def connected(self, connection: Connection) -> None:
        """Register the connection and run `on_connected`; raises ConnectionRefused."""
        self.lifetime.connections[connection.connection_id] = connection
        try:
            await self.app.on_connected(connection)
        except Exception as exc:
            log_failure("on_connected", self.app, connection)
            connection.close_code = CLOSE_ERROR
            raise ConnectionRefused(Close("Connection refused."), exc) from exc

    async def disconnected(self, connection: Connection, exc: BaseException | None) -> None:
        """Run `on_disconnected` (unless `on_connected` refused) and forget the connection."""
        connection.mark_closed()
        if not isinstance(exc, ConnectionRefused):
            reason = (
                None
                if exc is None or isinstance(exc, ClientClosed | ServerShutdown)
                else exc
                if isinstance(exc, Exception)
                else None
            )
            try:
                await self.app.on_disconnected(connection, reason)
            except Exception:
                log_failure("on_disconnected", self.app, connection)
        cid = connection.connection_id
        if self.lifetime.connections.get(cid) is connection:
            del self.lifetime.connections[cid]
        self._remember_ended(cid)

    def _remember_ended(self, connection_id: str) -> None:
        now = time.monotonic()
        ended = self.ended_ids
        ended[connection_id] = now + self.options.DISCONNECT_TIMEOUT + 10
        if len(ended) > 64 and len(ended) % 64 == 0:
            for key in [k for k, expiry in ended.items() if expiry < now]:
                del ended[key]


# Every raw handler of this process (the connection count for MAX_CONNECTIONS reads them).
_handlers: weakref.WeakSet[RawConnectionHandler] = weakref.WeakSet()


def connection_count() -> int:
    """Raw connections held by this process."""
    return sum(len(handler.lifetime.connections) for handler in list(_handlers))


def close_raw_connections() -> list[Connection]:
    """Close every raw connection of this process (server shutdown); returns them."""
    connections = [c for h in list(_handlers) for c in list(h.lifetime.connections.values())]
    for connection in connections:
        connection.close()
    return connections
