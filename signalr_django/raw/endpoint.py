"""`ConnectionEndpoint`: the ASGI application serving one connection handler at one URL.

The same requests as a hub endpoint (`POST {path}/negotiate`, the WebSocket upgrade and the
HTTP transports' requests on `{path}`), served by the same transport code.
"""

from __future__ import annotations

from typing import Any

from ..conf import HubOptions
from ..core import reach
from .connection import ConnectionHandler
from .handler import RawConnectionHandler, validate


class ConnectionEndpoint:
    """ASGI app for one `ConnectionHandler` subclass at one route."""

    def __init__(
        self,
        handler_cls: type[ConnectionHandler],
        route: str = "",
        options: dict[str, Any] | None = None,
    ) -> None:
        overrides = dict(options or {})
        validate(handler_cls, overrides, route)  # configuration errors surface at start-up
        self.handler_cls = handler_cls
        self.route = route
        self.overrides = overrides
        self._handler: RawConnectionHandler | None = None

    @property
    def handler(self) -> RawConnectionHandler:
        """The route's handler, made on first use (settings and the channel layer are
        read then, not at import)."""
        if self._handler is None:
            self._handler = RawConnectionHandler(self.handler_cls, self.route, self.overrides)
        return self._handler

    @property
    def options(self) -> HubOptions:
        """The resolved options of this route."""
        return self.handler.options

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Route by scope type and path."""
        from ..endpoint import _is_negotiate
        from ..transports.http import serve_connection_request, serve_negotiate
        from ..transports.websocket import serve_websocket

        if not reach.serving:
            reach.mark_serving()
        handler = self.handler
        backplane = handler.lifetime.backplane
        if backplane is not None and not handler.forwarding_ready:
            handler.forwarding_ready = True
            from ..transports import forwarding

            forwarding.register(backplane, handler)
        kind = scope["type"]
        if kind == "websocket":
            await serve_websocket(handler, scope, receive, send)
        elif kind == "http":
            if _is_negotiate(scope):
                await serve_negotiate(handler, scope, receive, send)
            else:
                await serve_connection_request(handler, scope, receive, send)
