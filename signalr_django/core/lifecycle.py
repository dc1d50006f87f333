"""Connection lifecycle log: one line per connect, per close (with its reason), per refusal.

Logger `signalr_django.connections`. Connects and closes are INFO, so a project that turns
that logger on sees every connection's life; refusals (origin, auth, limit, draining,
transport) are INFO too but rate-limited per reason (`core.logs`), so a flood of refused
attempts cannot fill a disk. Lines carry the loggable part of the connection id
(`safe_id`), the hub, the transport, the protocol and the user id; never a token, a cookie
or a query string.

The same calls feed the metrics counters (`signalr_django.metrics.counters`), so a close
reason in the log and in `signalr_disconnects_total` always agree.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..metrics.counters import METRICS, hub_label
from .logs import RateLimitedLog, safe_id

if TYPE_CHECKING:
    from .connection import HubConnection

logger = logging.getLogger("signalr_django.connections")

_refusals = RateLimitedLog()


def connected(connection: HubConnection) -> None:
    """A hub connection completed its handshake and was registered."""
    METRICS.count_connect(connection.hub_cls, connection.transport, connection.protocol.name)
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "Connected %s hub=%s transport=%s protocol=%s user=%s",
            safe_id(connection.connection_id),
            hub_label(connection.hub_cls),
            connection.transport,
            connection.protocol.name,
            connection.user_identifier,
        )


def disconnect_reason(connection: HubConnection, failure: BaseException | None) -> str:
    """Why `connection` ended: one of `metrics.counters.DISCONNECT_REASONS`."""
    if connection.aborted and connection.close_reason is not None:
        return connection.close_reason
    if failure is None:
        return "transport_closed"
    from ..dispatch.dispatcher import ClientClosed
    from ..dispatch.handler import ConnectionRefused, ServerShutdown
    from ..exceptions import ProtocolError

    if isinstance(failure, ClientClosed):
        return "client_closed"
    if isinstance(failure, ServerShutdown):
        return "shutdown"
    if isinstance(failure, ConnectionRefused):
        return "refused"
    if isinstance(failure, ProtocolError):
        return "protocol_error"
    return "error"


def closed(connection: HubConnection, reason: str) -> None:
    """A hub connection ended for `reason`."""
    METRICS.count_disconnect(connection.hub_cls, reason)
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "Closed %s hub=%s transport=%s protocol=%s user=%s reason=%s",
            safe_id(connection.connection_id),
            hub_label(connection.hub_cls),
            connection.transport,
            connection.protocol.name,
            connection.user_identifier,
            reason,
        )


def refused(scope: dict[str, Any], hub: Any, transport: str, reason: str, detail: str = "") -> None:
    """A connection attempt was refused before it started; `reason` is one of
    `metrics.counters.REFUSAL_REASONS`, `detail` a short non-secret explanation."""
    label = hub_label(hub)
    METRICS.count_refused(label, reason)
    if reason == "limit":
        METRICS.count_limit("MAX_CONNECTIONS")
    if not logger.isEnabledFor(logging.INFO):
        return
    client = scope.get("client")
    _refusals.log(
        logging.INFO,
        f"refused-{reason}",
        "Refused %s connection to hub=%s reason=%s%s client=%s origin=%s path=%s",
        transport,
        label,
        reason,
        f" ({detail})" if detail else "",
        client[0] if client else "-",
        _header(scope, b"origin") or "-",
        scope.get("path", ""),
        target=logger,
    )


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def reset() -> None:
    """Forget the refusal log's windows (tests)."""
    _refusals.reset()
