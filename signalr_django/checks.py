"""Django system checks for SignalR settings and hubs."""

from __future__ import annotations

from typing import Any

from django.core import checks


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """`signalr.E001`: the SIGNALR setting is invalid."""
    from .conf import global_options
    from .exceptions import HubConfigurationError

    try:
        options = global_options()
    except HubConfigurationError as exc:
        return [checks.Error(str(exc), id="signalr.E001")]
    messages: list[checks.CheckMessage] = []
    unknown = set(options.TRANSPORTS) - {"WebSockets", "ServerSentEvents", "LongPolling"}
    if unknown:
        messages.append(
            checks.Error(
                f"Unknown transport(s) in SIGNALR['TRANSPORTS']: {', '.join(sorted(unknown))}.",
                hint="Use WebSockets, ServerSentEvents and LongPolling.",
                id="signalr.E002",
            )
        )
    if options.KEEP_ALIVE_INTERVAL * 2 > options.CLIENT_TIMEOUT_INTERVAL:
        messages.append(
            checks.Warning(
                "CLIENT_TIMEOUT_INTERVAL should be at least twice KEEP_ALIVE_INTERVAL.",
                hint="Clients time out when they miss two pings; see the ASP.NET Core docs.",
                id="signalr.W001",
            )
        )
    return messages


def register() -> None:
    """Register the checks (called from AppConfig.ready)."""
    checks.register(check_settings, "signalr")
