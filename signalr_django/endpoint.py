"""`HubEndpoint`: the ASGI application that serves one hub at one URL.

It answers `POST {path}/negotiate`, the WebSocket upgrade on `{path}`, and the HTTP
transports' requests on `{path}`. It is a plain ASGI app, usable in a Channels `URLRouter`
(see `map_hub`) or mounted by any ASGI router.
"""

from __future__ import annotations

from typing import Any

from .conf import HubOptions
from .core import reach
from .dispatch.handler import get_handler
from .transports.http import serve_connection_request, serve_negotiate
from .transports.websocket import serve_websocket


class HubEndpoint:
    """ASGI app for one hub class at one route, with that endpoint's options."""

    def __init__(
        self, hub_cls: type, overrides: dict[str, Any] | None = None, route: str = ""
    ) -> None:
        from .dispatch.filtering import validate_filters
        from .dispatch.handler import register_endpoint
        from .dispatch.methods import describe_hub
        from .typed import client_calls

        self.hub_cls = hub_cls
        self.route = route
        self.overrides = dict(overrides or {})
        describe_hub(hub_cls)  # configuration errors surface at start-up, not on first call
        validate_filters(hub_cls)  # likewise for hub filters that cannot be imported or made
        client_calls(hub_cls)  # and for a client Protocol whose names clash with the proxies'
        register_endpoint(hub_cls, route, self.overrides)

    @property
    def options(self) -> HubOptions:
        """The endpoint's resolved options (endpoint over hub over settings)."""
        return get_handler(self.hub_cls, self.route).options

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Route by scope type and path."""
        if not reach.serving:
            reach.mark_serving()
        handler = get_handler(self.hub_cls, self.route)
        backplane = handler.lifetime.backplane
        if backplane is not None and not handler.forwarding_ready:
            handler.forwarding_ready = True
            from .transports import forwarding, handoff

            forwarding.register(backplane, handler)
            handoff.register(backplane, handler)
        kind = scope["type"]
        if kind == "websocket":
            await serve_websocket(handler, scope, receive, send)
        elif kind == "http":
            if _is_negotiate(scope):
                await serve_negotiate(handler, scope, receive, send)
            else:
                await serve_connection_request(handler, scope, receive, send)
        elif kind == "lifespan":  # an endpoint served as the whole application
            from .server.lifespan import lifespan

            await lifespan(scope, receive, send)


def _is_negotiate(scope: dict[str, Any]) -> bool:
    route = scope.get("url_route")
    if route is not None and "signalr_negotiate" in route.get("kwargs", {}):
        return bool(route["kwargs"]["signalr_negotiate"])
    path: str = scope.get("path", "")
    return path.rstrip("/").endswith("/negotiate")
