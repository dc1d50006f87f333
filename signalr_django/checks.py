"""Django system checks: settings mistakes and unsafe deployments, caught at start-up."""

from __future__ import annotations

from typing import Any

from django.core import checks


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Invalid SIGNALR settings (E001-E003, E010, E020) and inconsistent timeouts (W001)."""
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
    messages.extend(_check_caps(options))
    messages.extend(_check_filters())
    if options.BACKPLANE not in ("auto", "channel_layer", "none"):
        messages.append(
            checks.Error(
                "SIGNALR['BACKPLANE'] must be 'auto', 'channel_layer' or 'none'.",
                id="signalr.E003",
            )
        )
    return messages


CAPS = (
    "MAXIMUM_PARALLEL_STREAMS_PER_CLIENT",
    "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT",
    "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT",
    "MAXIMUM_GROUPS_PER_CLIENT",
    "MAXIMUM_GROUP_NAME_LENGTH",
    "MAXIMUM_USER_ID_LENGTH",
)


def _check_caps(options: Any) -> list[checks.CheckMessage]:
    """E010: a per-connection cap is a whole number (0 forbids the feature) or None (no cap)."""
    wrong = [
        name
        for name in CAPS
        if (value := getattr(options, name)) is not None and (type(value) is not int or value < 0)
    ]
    if not wrong:
        return []
    return [
        checks.Error(
            f"SIGNALR[{', '.join(map(repr, wrong))}] must be a whole number or None.",
            hint="None removes the cap; see the README's Guarantees and limits.",
            id="signalr.E010",
        )
    ]


def _check_filters() -> list[checks.CheckMessage]:
    """E020: every SIGNALR['HUB_FILTERS'] entry imports and is a hub filter."""
    from .dispatch.filtering import global_filters
    from .exceptions import HubConfigurationError

    try:
        global_filters()
    except HubConfigurationError as exc:
        return [
            checks.Error(
                str(exc),
                hint="List HubFilter instances, classes or dotted paths to them.",
                id="signalr.E020",
            )
        ]
    return []


def check_deployment(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Set-ups that work on a laptop and fail in production (W002-W004)."""
    from django.conf import settings

    from .conf import global_options

    options = global_options()
    messages: list[checks.CheckMessage] = []
    layers = getattr(settings, "CHANNEL_LAYERS", {}) or {}
    backend = str(layers.get(options.CHANNEL_LAYER, {}).get("BACKEND", ""))
    several = len(options.WORKERS) > 1 or options.WORKER_URL is not None
    if (not settings.DEBUG or several) and (
        not backend or backend.endswith("InMemoryChannelLayer")
    ):
        messages.append(
            checks.Warning(
                "The in-memory channel layer (or none) cannot reach other processes: with "
                "several Daphne workers, or a WSGI site sending through the hub context, "
                "messages only reach connections of the sending process.",
                hint="Use channels_redis.pubsub.RedisPubSubChannelLayer in CHANNEL_LAYERS.",
                id="signalr.W002",
            )
        )
    if backend.endswith("core.RedisChannelLayer"):
        messages.append(
            checks.Warning(
                "The classic RedisChannelLayer works, but queues each message per worker "
                "(capacity 100 by default, dropped when full) and expires memberships after "
                "group_expiry; bursts of large group traffic can overflow it.",
                hint="Prefer channels_redis.pubsub.RedisPubSubChannelLayer for hubs.",
                id="signalr.W004",
            )
        )
        messages.extend(_classic_socket_timeout(layers.get(options.CHANNEL_LAYER, {})))
    messages.extend(_hubs_in_wsgi_urls())
    shared_layer = bool(backend) and not backend.endswith("InMemoryChannelLayer")
    if shared_layer and options.BACKPLANE != "none":
        messages.extend(_process_local_cache(settings, options.LOAD_CACHE))
    return messages


def _process_local_cache(settings: Any, alias: str) -> list[checks.CheckMessage]:
    """W006: connection claims (transports/ownership.py) need a cache the workers share."""
    caches = getattr(settings, "CACHES", None) or {}
    backend = str(caches.get(alias, {}).get("BACKEND", "locmem.LocMemCache"))
    if not backend.endswith(("locmem.LocMemCache", "dummy.DummyCache")):
        return []
    return [
        checks.Warning(
            f"The cache '{alias}' (SIGNALR['LOAD_CACHE']) is not shared between processes: "
            "with several workers, one connection token could be used on two of them, or "
            "again on another worker after its connection ended.",
            hint="Point it at Redis: django.core.cache.backends.redis.RedisCache.",
            id="signalr.W006",
        )
    ]


def _classic_socket_timeout(config: dict[str, Any]) -> list[checks.CheckMessage]:
    """W005: redis-py 8 reads with a 5 s timeout, as long as the classic layer's blocking pop."""
    try:
        import redis
    except ImportError:
        return []
    major = int(str(getattr(redis, "__version__", "0")).split(".")[0] or 0)
    hosts = (config.get("CONFIG") or {}).get("hosts") or ["redis://localhost:6379"]
    if major < 8:
        return []
    short = [h for h in hosts if not isinstance(h, dict) or not (h.get("socket_timeout") or 0) > 5]
    if not short:
        return []
    return [
        checks.Warning(
            "redis-py 8 times out socket reads after 5 s by default, exactly as long as the "
            "classic RedisChannelLayer's blocking receive: receives then fail every 5 s.",
            hint='Give each host a longer timeout: {"address": "redis://...", '
            '"socket_timeout": 10}.',
            id="signalr.W005",
        )
    ]


def _hubs_in_wsgi_urls() -> list[checks.CheckMessage]:
    """W003: `map_hub` patterns in ROOT_URLCONF are served by WSGI, which cannot hold them."""
    from django.urls import URLPattern, URLResolver, get_resolver

    from .endpoint import HubEndpoint

    found: list[str] = []

    def walk(patterns: Any, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern) and isinstance(pattern.callback, HubEndpoint):
                found.append(prefix + str(pattern.pattern))

    try:
        walk(get_resolver().url_patterns, "")
    except Exception:  # a broken URLconf is reported by Django's own checks
        return []
    return [
        checks.Warning(
            f"The hub URL {route!r} is in ROOT_URLCONF, which the WSGI site serves; hubs need "
            "an ASGI server (Daphne) holding their connections.",
            hint="Route hubs with map_hub() in asgi.py's URLRouter; on the WSGI site use "
            "signalr_django.views.negotiate_redirect() to send clients to the workers.",
            id="signalr.W003",
        )
        for route in found
    ]


def register() -> None:
    """Register the checks (called from AppConfig.ready)."""
    checks.register(check_settings, "signalr")
    checks.register(check_deployment, "signalr", deploy=False)
