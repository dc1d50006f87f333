"""Settings: the `SIGNALR` dict, per-hub and per-endpoint overrides, ASP.NET Core's defaults.

A value is looked up in the endpoint's options (`map_hub(route, Hub, **options)`) first,
then on the hub's `options`, then in `settings.SIGNALR`, then here. The resolved options
are cached per hub class and dropped when Django's settings change (tests use
`override_settings`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .exceptions import HubConfigurationError

TRANSPORT_NAMES = ("WebSockets", "ServerSentEvents", "LongPolling")


@dataclass(frozen=True, slots=True)
class HubOptions:
    """Resolved options of one hub; every duration is in seconds."""

    KEEP_ALIVE_INTERVAL: float = 15.0
    CLIENT_TIMEOUT_INTERVAL: float = 30.0
    HANDSHAKE_TIMEOUT: float = 15.0
    MAXIMUM_RECEIVE_MESSAGE_SIZE: int = 32 * 1024
    MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT: int = 1
    STREAM_BUFFER_CAPACITY: int = 10
    # Per-connection caps (see the README's "Guarantees and limits"). ASP.NET Core has no
    # equivalent of these; each bounds what one client can make a worker hold, and going
    # over one fails only that call (a Completion error naming the setting). None: no cap.
    #
    # Server-to-client streams running at once: each is a task and an async generator
    # (~2.5 KiB) plus what the hub method holds. 100 leaves room for a client subscribing
    # to many feeds while keeping one connection's share under a MiB.
    MAXIMUM_PARALLEL_STREAMS_PER_CLIENT: int | None = 100
    # Client-to-server streams open at once: each may queue STREAM_BUFFER_CAPACITY items
    # of up to MAXIMUM_RECEIVE_MESSAGE_SIZE (320 KiB with the defaults), so the cap is low.
    MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT: int | None = 10
    # Client results awaiting this client's answer: a waiting call gives its invocation
    # slot back (as in ASP.NET Core), so without a cap a client that never answers can make
    # the server hold any number of suspended hub calls.
    MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT: int | None = 100
    # Groups one connection belongs to: each membership costs memory here and, with a
    # backplane, a channel-layer subscription. 1,000 covers per-item subscription schemes.
    MAXIMUM_GROUPS_PER_CLIENT: int | None = 1000
    # Group names and user ids, in characters. 1,024 is generous for any readable name or
    # id (a UUID has 36, an e-mail address at most 254) and bounds what every membership
    # and every user entry stores.
    MAXIMUM_GROUP_NAME_LENGTH: int | None = 1024
    MAXIMUM_USER_ID_LENGTH: int | None = 1024
    ENABLE_DETAILED_ERRORS: bool = False
    SUPPORTED_PROTOCOLS: tuple[str, ...] | None = None
    TRANSPORTS: tuple[str, ...] = ("WebSockets", "ServerSentEvents", "LongPolling")
    DISCONNECT_TIMEOUT: float = 15.0
    MINIMUM_NEGOTIATE_VERSION: int = 0
    USER_ID_PROVIDER: str = "signalr_django.users.default_user_id"
    AUTHENTICATOR: str | None = "signalr_django.auth.signed_token_authenticator"
    ACCESS_TOKEN_MAX_AGE: float = 3600.0
    ALLOWED_ORIGINS: tuple[str, ...] | None = None
    CORS_ALLOWED_ORIGINS: tuple[str, ...] = ()
    BACKPLANE: str = "auto"
    CHANNEL_LAYER: str = "default"
    BACKPLANE_TIMEOUT: float = 5.0
    SHUTDOWN_DRAIN_TIMEOUT: float = 5.0
    OUTBOUND_BUFFER_LIMIT: int = 1024 * 1024
    MAX_CONNECTIONS: int | None = None
    WORKER_URL: str | None = None
    WORKERS: tuple[str, ...] = ()
    LOAD_CACHE: str = "default"
    LOAD_REPORT_INTERVAL: float = 2.0
    GROUP_REFRESH_INTERVAL: float = 3600.0
    ALLOW_STATEFUL_RECONNECTS: bool = False
    STATEFUL_RECONNECT_BUFFER_SIZE: int = 100_000
    # Hub filters run around every hub's invocations and lifecycle events (global only;
    # a hub lists its own in `Hub.filters`): see dispatch/filtering.py.
    HUB_FILTERS: tuple[Any, ...] = ()
    # Who may connect, on top of the hub's `@authorize`: None, True (any signed-in user) or
    # a dict of `@authorize`'s keyword arguments ({"permissions": [...], "test": callable});
    # resolved to an `auth.Requirement`. Mostly set per endpoint (`map_hub(..., AUTHORIZE=...)`).
    AUTHORIZE: Any = None
    # ASP.NET Core's CloseOnAuthenticationExpiration: end a connection (Close, reconnect
    # allowed) once the bearer token or the session it was admitted with expires.
    CLOSE_ON_AUTHENTICATION_EXPIRATION: bool = False
    # Called as hook(scope, user, headers) before a successful negotiate response is sent;
    # it may append (name, value) pairs to `headers` (cookies for a load balancer's affinity,
    # a CSRF cookie). A callable or its dotted path; it may be async.
    NEGOTIATE_RESPONSE_HOOK: Any = None
    # Count messages, invocations, disconnect reasons and backplane traffic for the
    # Prometheus view (`signalr_django.metrics`, extra `metrics`). Off by default: the hot
    # paths then pay one attribute check. Gauges (connections, queued bytes) are read at
    # scrape time and work either way.
    METRICS: bool = False

    def with_overrides(self, values: dict[str, Any], source: str) -> HubOptions:
        """A copy with `values` applied; unknown keys are configuration errors."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise HubConfigurationError(
                f"Unknown SignalR option(s) {', '.join(unknown)} in {source}; "
                f"known options are {', '.join(sorted(known))}."
            )
        cleaned: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
        }
        if "AUTHORIZE" in cleaned:
            from .auth import as_requirement

            cleaned["AUTHORIZE"] = as_requirement(cleaned["AUTHORIZE"], source)
        return dataclasses.replace(self, **cleaned)


# Options that belong to the process or to the hub class, not to one of its URLs: the
# backplane, worker discovery and load reports, the user ids the lifetime manager groups
# connections by, and what the token authenticator accepts.
PROCESS_WIDE = frozenset(
    {
        "ACCESS_TOKEN_MAX_AGE",
        "BACKPLANE",
        "BACKPLANE_TIMEOUT",
        "CHANNEL_LAYER",
        "GROUP_REFRESH_INTERVAL",
        "HUB_FILTERS",  # global; a hub lists its own in `Hub.filters`
        "LOAD_CACHE",
        "LOAD_REPORT_INTERVAL",
        "MAXIMUM_USER_ID_LENGTH",
        "MAX_CONNECTIONS",
        "METRICS",
        "SHUTDOWN_DRAIN_TIMEOUT",
        "USER_ID_PROVIDER",
        "WORKERS",
        "WORKER_URL",
    }
)


def _number(value: Any, whole: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if whole else isinstance(value, int | float)


def _value_error(name: str, value: Any, expected: str) -> str | None:
    """Why `value` cannot be option `name`, or None when it can."""
    if name == "AUTHORIZE":
        return None  # checked by as_requirement
    if name == "NEGOTIATE_RESPONSE_HOOK":
        ok = value is None or callable(value) or (isinstance(value, str) and "." in value)
        return None if ok else "a callable or its dotted path"
    if name == "TRANSPORTS":
        if not isinstance(value, list | tuple) or not value:
            return f"a non-empty list of {', '.join(TRANSPORT_NAMES)}"
        unknown = [t for t in value if t not in TRANSPORT_NAMES]
        return f"transports among {', '.join(TRANSPORT_NAMES)}" if unknown else None
    optional = expected.endswith("| None")
    if value is None:
        return None if optional else "not None"
    kind = expected.removesuffix("| None").strip()
    if kind == "bool":
        return None if isinstance(value, bool) else "True or False"
    if kind in ("int", "float"):
        if not _number(value, kind == "int") or value < 0:
            return "a whole number >= 0" if kind == "int" else "a number of seconds >= 0"
        return None
    if kind == "str":
        return None if isinstance(value, str) else "a string"
    if kind == "tuple[str, ...]":
        ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        return None if ok else "a list of strings"
    return None


def endpoint_options(hub_cls: type, overrides: dict[str, Any], source: str) -> HubOptions:
    """The options of one endpoint of `hub_cls`: `overrides` over the hub's options.

    Raises HubConfigurationError for an unknown key, a process-wide one, or a bad value,
    so a mistake in `map_hub(...)` stops the process at start-up.
    """
    base = hub_options(hub_cls)
    if not overrides:
        return base
    known = {f.name for f in dataclasses.fields(HubOptions)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise HubConfigurationError(
            f"Unknown SignalR option(s) {', '.join(unknown)} in {source}; "
            f"known options are {', '.join(sorted(known - PROCESS_WIDE))}."
        )
    shared = sorted(set(overrides) & PROCESS_WIDE)
    if shared:
        raise HubConfigurationError(
            f"{', '.join(shared)} cannot differ between the URLs of a hub ({source}); "
            "set them in settings.SIGNALR or on the hub's options."
        )
    hints = _hints()
    for name, value in overrides.items():
        problem = _value_error(name, value, hints[name])
        if problem is not None:
            raise HubConfigurationError(
                f"Bad value {value!r} for {name} in {source}: expected {problem}."
            )
    return base.with_overrides(overrides, source)


def _hints() -> dict[str, str]:
    """Each option's annotation, as written (`from __future__ import annotations`)."""
    return {f.name: str(f.type) for f in dataclasses.fields(HubOptions)}


DEFAULTS = HubOptions()

_cache: dict[type, HubOptions] = {}


_global: HubOptions | None = None


def global_options() -> HubOptions:
    """`settings.SIGNALR` applied to the defaults (environment: SIGNALR_WORKER_URL)."""
    global _global
    if _global is None:
        import os

        from django.conf import settings

        values = dict(getattr(settings, "SIGNALR", None) or {})
        if os.environ.get("SIGNALR_WORKER_URL"):
            values["WORKER_URL"] = os.environ["SIGNALR_WORKER_URL"]
        _global = DEFAULTS.with_overrides(values, "settings.SIGNALR")
    return _global


def hub_options(hub_cls: type) -> HubOptions:
    """Options for `hub_cls`: its `options` class attribute over the global settings."""
    options = _cache.get(hub_cls)
    if options is None:
        overrides: dict[str, Any] = dict(getattr(hub_cls, "options", None) or {})
        options = global_options().with_overrides(overrides, f"{hub_cls.__qualname__}.options")
        _cache[hub_cls] = options
    return options


def clear_cache(**_: Any) -> None:
    """Forget resolved options (connected to Django's `setting_changed`)."""
    global _global
    _global = None
    _cache.clear()
