"""Settings: the `SIGNALR` dict, per-hub and per-endpoint overrides, ASP.NET Core's defaults.

A value is looked up in the endpoint's options (`map_hub(route, Hub, **options)`) first,
then on the hub's `options`, then in `settings.SIGNALR`, then here. The resolved options
are cached per hub class and dropped when Django's settings change (tests use
`override_settings`).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .exceptions import HubConfigurationError
from .settings_schema import Spec, option_annotations, problem


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
    # How long a cluster-wide query (presence, counts, status) waits for the workers'
    # answers; a worker that has not answered by then is named in `workers_missing`.
    QUERY_TIMEOUT: float = 2.0
    SHUTDOWN_DRAIN_TIMEOUT: float = 5.0
    OUTBOUND_BUFFER_LIMIT: int = 1024 * 1024
    MAX_CONNECTIONS: int | None = None
    WORKER_URL: str | None = None
    WORKERS: tuple[str, ...] = ()
    LOAD_CACHE: str = "default"
    LOAD_REPORT_INTERVAL: float = 2.0
    GROUP_REFRESH_INTERVAL: float = 3600.0
    # Sends kept per hub in a capped Redis stream (pub/sub layer only) so a worker that
    # resubscribes after losing Redis catches up on what it missed; 0 turns it off.
    BACKPLANE_HISTORY_LENGTH: int = 10_000
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
    # The REST management API (signalr_django.rest, docs/rest-api.md): None (off) or a dict
    # {"ACCESS_KEY": str or list of str (HS256 keys; several while rotating),
    #  "HUBS": {"chat": "myapp.hubs.ChatHub"} (REST name -> hub class or dotted path),
    #  "TOKEN_LEEWAY": seconds of clock skew allowed on `exp`/`nbf` (default 60)}.
    REST_API: dict[str, Any] | None = None

    def with_overrides(self, values: dict[str, Any], source: str) -> HubOptions:
        """A copy with `values` applied; an unknown key or a bad value raises
        HubConfigurationError naming it (hub and endpoint options fail where they are
        mapped, not at the first connection)."""
        options, problems = self.tolerant_overrides(values, source)
        if problems:
            raise HubConfigurationError(" ".join(p.message for p in problems))
        return options

    def tolerant_overrides(
        self, values: dict[str, Any], source: str
    ) -> tuple[HubOptions, list[Problem]]:
        """A copy with the good `values` applied, and what was wrong with the others.

        Settings are read this way: a mistake leaves that option at its default and is
        reported by `manage.py check`, instead of stopping every command with a traceback.
        """
        known = option_annotations(HubOptions)
        problems: list[Problem] = []
        unknown = sorted((str(k) for k in values if k not in known), key=str)
        if unknown:
            problems.append(_unknown(unknown, known, source))
        cleaned: dict[str, Any] = {}
        for name, value in values.items():
            if name not in known:
                continue
            entry = problem(name, value, known[name])
            if entry is not None:
                problems.append(
                    Problem(
                        entry.check_id,
                        f"Bad value {_shown(value)} for {name} in {source}: "
                        f"expected {entry.expected}.",
                        name,
                        _hint(name, entry),
                    )
                )
                continue
            cleaned[name] = tuple(value) if isinstance(value, list) else value
        if "AUTHORIZE" in cleaned:
            from .auth import as_requirement

            try:
                cleaned["AUTHORIZE"] = as_requirement(cleaned["AUTHORIZE"], source)
            except HubConfigurationError as exc:
                # Fail closed: an authorization rule that cannot be read refuses everyone
                # rather than falling back to the default (anyone may connect).
                from .auth import Requirement

                cleaned["AUTHORIZE"] = Requirement(test=_refuse_everyone)
                problems.append(
                    Problem("signalr.E009", str(exc), "AUTHORIZE", _hint("AUTHORIZE", None))
                )
        return dataclasses.replace(self, **cleaned), problems


def _shown(value: Any, limit: int = 200) -> str:
    """`repr(value)`, cut short: a message names the value, it does not dump it."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _refuse_everyone(user: Any) -> bool:
    """The AUTHORIZE test used while the configured one is invalid."""
    return False


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake in a set of options, as a system check reports it."""

    check_id: str
    message: str
    key: str
    hint: str


def _unknown(unknown: list[str], known: dict[str, str], source: str) -> Problem:
    """E001 for misspelt keys: the nearest known name of each, else the list of names."""
    guesses = []
    guessed_all = True
    for name in unknown:
        close = difflib.get_close_matches(name, list(known), n=1)
        guessed_all = guessed_all and bool(close)
        guesses.append(f"{name} (did you mean {close[0]}?)" if close else name)
    message = f"Unknown SignalR option(s) {', '.join(guesses)} in {source}."
    if not guessed_all:
        message += f" Known options are {', '.join(sorted(known))}."
    return Problem(
        "signalr.E001",
        message,
        unknown[0],
        "Every option, with its type and default, is in the settings reference (docs/checks.md).",
    )


def _hint(name: str, entry: Spec | None) -> str:
    meaning = f"{name}: {entry.meaning}. " if entry is not None and entry.meaning else ""
    return meaning + "See the settings reference (docs/checks.md)."


# Options that belong to the process or to the hub class, not to one of its URLs: the
# backplane, worker discovery and load reports, the user ids the lifetime manager groups
# connections by, and what the token authenticator accepts.
PROCESS_WIDE = frozenset(
    {
        "ACCESS_TOKEN_MAX_AGE",
        "BACKPLANE",
        "BACKPLANE_TIMEOUT",
        "BACKPLANE_HISTORY_LENGTH",
        "CHANNEL_LAYER",
        "GROUP_REFRESH_INTERVAL",
        "HUB_FILTERS",  # global; a hub lists its own in `Hub.filters`
        "LOAD_CACHE",
        "LOAD_REPORT_INTERVAL",
        "MAXIMUM_USER_ID_LENGTH",
        "MAX_CONNECTIONS",
        "METRICS",
        "QUERY_TIMEOUT",
        "REST_API",
        "SHUTDOWN_DRAIN_TIMEOUT",
        "USER_ID_PROVIDER",
        "WORKERS",
        "WORKER_URL",
    }
)


def endpoint_options(hub_cls: type, overrides: dict[str, Any], source: str) -> HubOptions:
    """The options of one endpoint of `hub_cls`: `overrides` over the hub's options.

    Raises HubConfigurationError for an unknown key, a process-wide one, or a bad value,
    so a mistake in `map_hub(...)` stops the process at start-up.
    """
    base = hub_options(hub_cls)
    if not overrides:
        return base
    known = option_annotations(HubOptions)
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        per_url = {k: v for k, v in known.items() if k not in PROCESS_WIDE}
        raise HubConfigurationError(_unknown(unknown, per_url, source).message)
    shared = sorted(set(overrides) & PROCESS_WIDE)
    if shared:
        raise HubConfigurationError(
            f"{', '.join(shared)} cannot differ between the URLs of a hub ({source}); "
            "set them in settings.SIGNALR or on the hub's options."
        )
    return base.with_overrides(overrides, source)


DEFAULTS = HubOptions()

_cache: dict[type, HubOptions] = {}


_global: HubOptions | None = None
_problems: list[Problem] = []


def global_options() -> HubOptions:
    """`settings.SIGNALR` applied to the defaults (environment: SIGNALR_WORKER_URL).

    Never raises: a key or value that is wrong is left out (its default applies) and
    kept in `settings_problems()` for the system checks, so `manage.py check` can say
    what is wrong instead of every command stopping in `AppConfig.ready`.
    """
    global _global, _problems
    if _global is None:
        import os

        from django.conf import settings

        raw = getattr(settings, "SIGNALR", None) or {}
        problems: list[Problem] = []
        if isinstance(raw, Mapping):
            values = dict(raw)
        else:
            values = {}
            problems.append(
                Problem(
                    "signalr.E001",
                    f"settings.SIGNALR must be a dict of options, not {type(raw).__name__}.",
                    "SIGNALR",
                    'SIGNALR = {"KEEP_ALIVE_INTERVAL": 15, ...}; see docs/checks.md.',
                )
            )
        if os.environ.get("SIGNALR_WORKER_URL"):
            values["WORKER_URL"] = os.environ["SIGNALR_WORKER_URL"]
        options, found = DEFAULTS.tolerant_overrides(values, "settings.SIGNALR")
        _global, _problems = options, problems + found
    return _global


def settings_problems() -> list[Problem]:
    """What `global_options()` had to leave out of `settings.SIGNALR`, and why."""
    global_options()
    return list(_problems)


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
