"""Hub filters (ASP.NET Core's `IHubFilter`) and two ready-made ones.

Configure them globally in `SIGNALR["HUB_FILTERS"]` and per hub in `Hub.filters`; see
`signalr_django.filters.base` for the hooks and `signalr_django.dispatch.filtering` for the
order they run in.
"""

from __future__ import annotations

from .base import (
    ConnectedNext,
    DisconnectedNext,
    HubFilter,
    HubInvocationContext,
    HubLifetimeContext,
    InvokeNext,
)
from .log import LoggingFilter
from .ratelimit import RateLimitFilter

__all__ = [
    "ConnectedNext",
    "DisconnectedNext",
    "HubFilter",
    "HubInvocationContext",
    "HubLifetimeContext",
    "InvokeNext",
    "LoggingFilter",
    "RateLimitFilter",
]
