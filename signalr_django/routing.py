"""`map_hub`: put a hub on a URL, like ASP.NET Core's `MapHub<T>("/path")`."""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, re_path

from .endpoint import HubEndpoint


def map_hub(route: str, hub_cls: type, **options: Any) -> URLPattern:
    """A URL pattern serving `hub_cls` at `route` (and `route/negotiate`).

    Put the same pattern in both the `http` and the `websocket` `URLRouter` of the ASGI
    application: negotiate and the HTTP transports arrive as HTTP, the WebSocket transport
    as a WebSocket. `route` is a plain path such as `"hubs/chat"`; a trailing slash is
    optional for clients.

    `options` (SIGNALR setting names: `TRANSPORTS`, `AUTHORIZE`, `KEEP_ALIVE_INTERVAL`...)
    apply to this URL only, over the hub's `options` attribute and the settings, like
    ASP.NET Core's `MapHub<T>(path, options => ...)`. They are checked here: an unknown
    name, a process-wide one or a bad value raises HubConfigurationError. The same hub on
    several URLs has one lifetime manager: sends and groups span all of them.
    """
    path = route.strip("/")
    pattern = rf"^{re.escape(path)}(?P<signalr_negotiate>/negotiate)?/?$"
    return re_path(pattern, HubEndpoint(hub_cls, options, path))  # type: ignore[arg-type]


def map_connection(route: str, handler_cls: type, **options: object) -> URLPattern:
    """A URL pattern serving the connection handler `handler_cls` at `route`.

    ASP.NET Core's `MapConnectionHandler<T>(path)`: negotiate, WebSockets, Server-Sent
    Events and long polling as for hubs, but no hub protocol; the handler's `on_message`
    gets each message as the client sent it (see `signalr_django.ConnectionHandler`).
    `options` (SIGNALR option names, e.g. `TRANSPORTS=("WebSockets",)`) apply to this
    route over the class's `options` and the settings; unknown names fail here. Put the
    pattern in both the `http` and the `websocket` `URLRouter`, as for `map_hub`.
    """
    from .raw.endpoint import ConnectionEndpoint

    base = re.escape(route.strip("/"))
    pattern = rf"^{base}(?P<signalr_negotiate>/negotiate)?/?$"
    endpoint = ConnectionEndpoint(handler_cls, route.strip("/"), options)
    return re_path(pattern, endpoint)  # type: ignore[arg-type]
