"""What a transport drives: a hub's session, or a connection handler's raw session.

The transports (negotiate, WebSockets, Server-Sent Events, long polling, forwarding) serve
an `EndpointHandler` and feed a `Session`; both kinds offer the same members (`open`,
`feed`, `finish`, `connection`, `handshake_timed_out`, `on_abort`, `set_outbound`,
`close_code`, `message_per_request`). The kind is fixed per endpoint, when a connection
starts; nothing is looked up per message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from ..dispatch.handler import HubConnectionHandler
from ..dispatch.session import HubSession
from ..protocol import TransferFormat
from ..server.outbound import Outbound

if TYPE_CHECKING:
    from ..raw.handler import RawConnectionHandler
    from ..raw.session import RawSession

EndpointHandler: TypeAlias = "HubConnectionHandler | RawConnectionHandler"
Session: TypeAlias = "HubSession | RawSession"


def new_session(
    handler: EndpointHandler,
    *,
    connection_id: str,
    scope: dict[str, Any],
    user: Any,
    transport: str,
    formats: tuple[TransferFormat, ...],
    outbound: Outbound,
    on_abort: Callable[[], None] | None = None,
    stateful: bool = False,
) -> Session:
    """The session of a connection starting on `handler`'s endpoint."""
    if isinstance(handler, HubConnectionHandler):
        return HubSession(
            handler,
            connection_id=connection_id,
            scope=scope,
            user=user,
            transport=transport,
            formats=formats,
            outbound=outbound,
            on_abort=on_abort,
            stateful=stateful,
        )
    return handler.new_session(
        connection_id=connection_id,
        scope=scope,
        user=user,
        transport=transport,
        formats=formats,
        outbound=outbound,
        on_abort=on_abort,
    )
