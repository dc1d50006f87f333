"""SignalR hubs for Django: the ASP.NET Core SignalR protocol on Channels and Daphne.

The public API is re-exported here; everything else is internal and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BackplaneError",
    "ClientResultError",
    "ConnectedNext",
    "Connection",
    "ConnectionGoneError",
    "ConnectionHandler",
    "ConnectionNotFoundError",
    "DisconnectedNext",
    "Hub",
    "HubCallerContext",
    "HubConfigurationError",
    "HubException",
    "HubFilter",
    "HubInvocationContext",
    "HubLifetimeContext",
    "InvokeNext",
    "LimitExceededError",
    "LoggingFilter",
    "RateLimitFilter",
    "Sent",
    "authorize",
    "client_method",
    "create_access_token",
    "get_hub_context",
    "get_sync_hub_context",
    "hub_method",
    "lifespan",
    "map_connection",
    "map_hub",
    "negotiate_redirect",
]

if TYPE_CHECKING:  # pragma: no cover - imports for type checkers only
    from .auth import authorize, create_access_token
    from .context import get_hub_context, get_sync_hub_context
    from .core.results import ClientResultError, ConnectionGoneError
    from .exceptions import (
        BackplaneError,
        ConnectionNotFoundError,
        HubConfigurationError,
        HubException,
        LimitExceededError,
    )
    from .filters import (
        ConnectedNext,
        DisconnectedNext,
        HubFilter,
        HubInvocationContext,
        HubLifetimeContext,
        InvokeNext,
        LoggingFilter,
        RateLimitFilter,
    )
    from .hub import Hub, HubCallerContext, hub_method
    from .raw.connection import Connection, ConnectionHandler
    from .routing import map_connection, map_hub
    from .sent import Sent
    from .server.lifespan import lifespan
    from .typed import client_method
    from .views import negotiate_redirect

_LAZY = {
    "Hub": ".hub",
    "HubCallerContext": ".hub",
    "hub_method": ".hub",
    "HubException": ".exceptions",
    "BackplaneError": ".exceptions",
    "ConnectionNotFoundError": ".exceptions",
    "LimitExceededError": ".exceptions",
    "HubConfigurationError": ".exceptions",
    "Sent": ".sent",
    "client_method": ".typed",
    "ClientResultError": ".core.results",
    "ConnectionGoneError": ".core.results",
    "HubFilter": ".filters",
    "HubInvocationContext": ".filters",
    "HubLifetimeContext": ".filters",
    "ConnectedNext": ".filters",
    "DisconnectedNext": ".filters",
    "InvokeNext": ".filters",
    "LoggingFilter": ".filters",
    "RateLimitFilter": ".filters",
    "create_access_token": ".auth",
    "negotiate_redirect": ".views",
    "authorize": ".auth",
    "get_hub_context": ".context",
    "get_sync_hub_context": ".context",
    "map_hub": ".routing",
    "map_connection": ".routing",
    "Connection": ".raw.connection",
    "ConnectionHandler": ".raw.connection",
    "lifespan": ".server.lifespan",
}


def __getattr__(name: str) -> Any:
    """Import public names lazily so `INSTALLED_APPS` loading never touches models or settings."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'signalr_django' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module, __name__), name)
