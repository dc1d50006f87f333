"""A connection's life, whatever its transport: handshake, connect, messages, disconnect.

Transports own the bytes; this module owns the order of events, which is ASP.NET Core's:
handshake -> lifetime manager registers the connection -> `Hub.on_connected` -> messages ->
Close written -> `Hub.on_disconnected(exception)` -> lifetime manager forgets it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ..auth import AUTH_EXPIRES
from ..conf import HubOptions, endpoint_options, hub_options
from ..core import lifecycle
from ..core.connection import HubConnection
from ..core.heartbeat import get_heartbeat
from ..core.results import InvocationScope, PendingResults, current_scope
from ..exceptions import HandshakeError, HubException
from ..filters.base import HubLifetimeContext
from ..hub import HubCallerContext
from ..lifetime.manager import get_lifetime_manager
from ..metrics import counters
from ..presence.hooks import tracker_for
from ..protocol import Close, HubProtocol, TransferFormat, get_protocol
from ..protocol.handshake import parse_handshake
from . import errors
from .dispatcher import ClientClosed, get_dispatcher
from .filtering import hub_filters

logger = logging.getLogger(__name__)


class ServerShutdown(Exception):
    """The server process is stopping; clients are told they may reconnect."""

    def __init__(self) -> None:
        super().__init__("The server is shutting down.")


class ConnectionRefused(Exception):
    """`Hub.on_connected` raised: the connection ends with a Close that forbids reconnects."""

    def __init__(self, close: Close, cause: Exception) -> None:
        super().__init__(close.error)
        self.close = close
        self.cause = cause


class HubConnectionHandler:
    """Drives the connections of one hub endpoint (a hub class at one route).

    Options are the endpoint's; the lifetime manager is the hub class's, shared by all of
    its endpoints, so sends and groups reach the connections of every path.
    """

    def __init__(self, hub_cls: type, options: HubOptions | None = None, route: str = "") -> None:
        self.hub_cls = hub_cls
        self.options = options or hub_options(hub_cls)
        self.route = route
        self.dispatcher = get_dispatcher(hub_cls)
        self.dispatcher.use_filters(hub_filters(hub_cls))
        self.lifetime = get_lifetime_manager(hub_cls)
        # Names this endpoint to other workers (forwarded requests, signed identities).
        self.endpoint_key = f"{self.lifetime.key}@{route}" if route else self.lifetime.key
        # Ids of connections that ended while their token could still attach: a token may
        # open one connection only (tokens are stateless, so this process remembers), and
        # long-polling ids ended by DELETE (later requests get 404, as in ASP.NET Core).
        # Shared by the hub's endpoints: a token is valid on every URL of its hub.
        self.ended_ids, self.deleted_ids = _spent.setdefault(hub_cls, ({}, {}))
        # Stateful connections whose socket dropped, waiting for the client to come back.
        self.resumable: dict[str, Any] = {}
        self.forwarding_ready = False
        counters.configure()

    def token_spent(self, connection_id: str) -> bool:
        """Whether a connection with this id already ran here and ended."""
        return connection_id in self.ended_ids

    def was_deleted(self, connection_id: str) -> bool:
        """Whether the client ended this connection with DELETE."""
        return connection_id in self.deleted_ids

    def mark_deleted(self, connection_id: str) -> None:
        """Remember a DELETE for as long as the connection's token could still be used."""
        self._remember(self.deleted_ids, connection_id)

    def _remember_ended(self, connection_id: str) -> None:
        self._remember(self.ended_ids, connection_id)

    def _remember(self, ended: dict[str, float], connection_id: str) -> None:
        now = time.monotonic()
        ended[connection_id] = now + self.options.DISCONNECT_TIMEOUT + 10
        if len(ended) > 64 and len(ended) % 64 == 0:
            for key in [k for k, expiry in ended.items() if expiry < now]:
                del ended[key]

    def select_protocol(
        self, record: str, transfer_formats: tuple[TransferFormat, ...]
    ) -> tuple[HubProtocol, int]:
        """Parse a handshake request and choose the protocol; raises HandshakeError."""
        request = parse_handshake(record, self.options.ENABLE_DETAILED_ERRORS)
        supported = self.options.SUPPORTED_PROTOCOLS
        protocol = get_protocol(request.protocol)
        if protocol is None or (supported is not None and request.protocol not in supported):
            raise HandshakeError(f"The protocol '{request.protocol}' is not supported.")
        if not protocol.is_version_supported(request.version):
            raise HandshakeError(
                f"The server does not support version {request.version} of the "
                f"'{request.protocol}' protocol."
            )
        if protocol.transfer_format not in transfer_formats:
            raise HandshakeError(
                f"Cannot use the '{protocol.name}' protocol on the current transport. The "
                f"transport does not support '{protocol.transfer_format.value}' transfer format."
            )
        return protocol, request.version

    async def connected(self, connection: HubConnection) -> None:
        """Register the connection and run `Hub.on_connected` (through the hub filters).

        Raises ConnectionRefused when `on_connected` or a filter's `on_connected` raises.
        """
        connection.caller_context = HubCallerContext(connection)
        if connection.pending_results is None:
            # Made here, where the hub's cap is known (the connection makes one lazily
            # otherwise, with the default cap).
            connection.pending_results = PendingResults(
                connection.options.MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT
            )
        if connection.options.CLOSE_ON_AUTHENTICATION_EXPIRATION:
            expires = connection.scope.get(AUTH_EXPIRES)
            connection.auth_expires = float(expires) if expires is not None else None
        await self.lifetime.on_connected(connection)
        lifecycle.connected(connection)
        if (
            connection.transport != "LongPolling"
            or connection.options.CLIENT_TIMEOUT_INTERVAL
            or connection.auth_expires is not None
        ):
            get_heartbeat().add(connection)
        token = current_scope.set(InvocationScope(connection, in_on_connected=True))
        try:
            hub = self.dispatcher.new_hub(connection)
            pipeline = self.dispatcher.filters
            if pipeline is None or pipeline.on_connected is None:
                await hub.on_connected()
            else:
                await pipeline.on_connected(HubLifetimeContext(hub.context, hub))
        except Exception as exc:
            detailed = self.options.ENABLE_DETAILED_ERRORS
            error = errors.build_error(errors.CONNECTION_ERROR, exc, detailed)
            if not isinstance(exc, HubException):
                logger.exception("on_connected of %s failed", self.hub_cls.__qualname__)
            raise ConnectionRefused(Close(error), exc) from exc
        finally:
            current_scope.reset(token)
        tracker = tracker_for(self.hub_cls)
        if tracker is not None:
            tracker.connected(connection)

    async def receive(self, connection: HubConnection, records: list[Any]) -> None:
        """Decode and dispatch framed records; raises ProtocolError or ClientClosed.

        Only complete messages count as the client being alive (as in ASP.NET Core), so a
        client trickling the bytes of a message it never finishes still times out.
        """
        connection.last_received = time.monotonic()
        decode = connection.protocol.decode
        dispatch = self.dispatcher.dispatch
        for record in records:
            message = decode(record)
            if message is not None:
                await dispatch(connection, message)

    def close_for(self, exc: BaseException | None) -> Close:
        """The Close message that ends a connection because of `exc`."""
        if exc is None or isinstance(exc, ClientClosed):
            return Close()
        if isinstance(exc, ConnectionRefused):
            return exc.close
        if isinstance(exc, ServerShutdown):
            return Close(allow_reconnect=True)
        detailed = self.options.ENABLE_DETAILED_ERRORS
        # Protocol errors, timeouts and failures let the client reconnect; a HubException
        # ending the connection is the hub's deliberate refusal.
        allow = not isinstance(exc, HubException)
        return Close(errors.build_error(errors.CONNECTION_ERROR, exc, detailed), allow)

    async def disconnected(self, connection: HubConnection, exc: BaseException | None) -> None:
        """Run `Hub.on_disconnected` (through the hub filters) and forget the connection."""
        connection.mark_closed()
        get_heartbeat().remove(connection)
        self.dispatcher.connection_ended(connection)
        if not isinstance(exc, ConnectionRefused):
            reason: Exception | None
            if isinstance(exc, ClientClosed):
                reason = HubException(exc.error) if exc.error else None
            elif isinstance(exc, ServerShutdown):
                reason = None
            else:
                reason = exc if isinstance(exc, Exception) else None
            try:
                hub = self.dispatcher.new_hub(connection)
                pipeline = self.dispatcher.filters
                if pipeline is None or pipeline.on_disconnected is None:
                    await hub.on_disconnected(reason)
                else:
                    await pipeline.on_disconnected(HubLifetimeContext(hub.context, hub), reason)
            except Exception:
                logger.exception("on_disconnected of %s failed", self.hub_cls.__qualname__)
        # The connection's traffic counts move to the process totals in the same step as
        # it leaves the lifetime manager (no await between): a scrape sees them once.
        counters.METRICS.fold_traffic(connection)
        await self.lifetime.on_disconnected(connection)
        tracker = tracker_for(self.hub_cls)
        if tracker is not None:
            tracker.disconnected(connection)
        self._remember_ended(connection.connection_id)
        lifecycle.closed(connection, lifecycle.disconnect_reason(connection, exc))


_handlers: dict[tuple[type, str], tuple[HubOptions, HubConnectionHandler]] = {}
_spent: dict[type, tuple[dict[str, float], dict[str, float]]] = {}
_endpoints: dict[tuple[type, str], dict[str, Any]] = {}


def register_endpoint(hub_cls: type, route: str, overrides: dict[str, Any]) -> HubOptions:
    """Record the options of `hub_cls` at `route`; validated now (HubConfigurationError).

    The same hub and route may be mapped more than once (an HTTP and a WebSocket router)
    only with the same options: they are one endpoint.
    """
    from ..exceptions import HubConfigurationError

    source = f"map_hub({route!r}, {hub_cls.__qualname__})"
    options = endpoint_options(hub_cls, overrides, source)
    key = (hub_cls, route)
    known = _endpoints.get(key)
    if known is not None and known != overrides:
        raise HubConfigurationError(
            f"{hub_cls.__qualname__} is already mapped at {route!r} with other options."
        )
    _endpoints[key] = dict(overrides)
    return options


def mapped_endpoints() -> list[tuple[type, str, dict[str, Any]]]:
    """Every (hub class, route, options) mapped in this process so far (system checks)."""
    return [(hub_cls, route, dict(o)) for (hub_cls, route), o in list(_endpoints.items())]


def get_handler(hub_cls: type, route: str = "") -> HubConnectionHandler:
    """The handler of `hub_cls` at `route` (options resolved when first used, and again
    after Django's settings change)."""
    key = (hub_cls, route)
    base = hub_options(hub_cls)
    entry = _handlers.get(key)
    if entry is None or entry[0] is not base:
        overrides = _endpoints.get(key, {})
        options = endpoint_options(hub_cls, overrides, f"map_hub({route!r}, ...)")
        entry = _handlers[key] = (base, HubConnectionHandler(hub_cls, options, route))
    return entry[1]
