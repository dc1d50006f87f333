"""SignalR hubs for Django: the ASP.NET Core SignalR protocol on Channels and Daphne.

The public API is re-exported here; everything else is internal and may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "BackplaneError",
    "ClientResultError",
    "Connection",
    "ConnectionGoneError",
    "ConnectionHandler",
    "ConnectionNotFoundError",
    "Hub",
    "HubCallerContext",
    "HubConfigurationError",
    "HubException",
    "HubFilter",
    "HubInvocationContext",
    "HubLifetimeContext",
    "LimitExceededError",
    "Sent",
    "authorize",
    "client_method",
    "get_hub_context",
    "get_sync_hub_context",
    "hub_method",
    "lifespan",
    "map_connection",
    "map_hub",
]

if TYPE_CHECKING:  # pragma: no cover - imports for type checkers only
    from .auth import authorize
    from .context import get_hub_context, get_sync_hub_context
    from .core.results import ClientResultError, ConnectionGoneError
    from .exceptions import (
        BackplaneError,
        ConnectionNotFoundError,
        HubConfigurationError,
        HubException,
        LimitExceededError,
    )
    from .filters import HubFilter, HubInvocationContext, HubLifetimeContext
    from .hub import Hub, HubCallerContext, hub_method
    from .raw.connection import Connection, ConnectionHandler
    from .routing import map_connection, map_hub
    from .sent import Sent
    from .server.lifespan import lifespan
    from .typed import client_method

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
