"""Django system checks: settings mistakes and unsafe deployments, caught at start-up."""

from __future__ import annotations

from typing import Any

from django.core import checks


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Every SIGNALR key typed and in range (E001-E010), imports and aliases resolved
    (E006-E008), filters (E020), and timeouts that fit together (W001)."""
    from .conf import global_options, settings_problems

    messages: list[checks.CheckMessage] = [
        checks.Error(p.message, hint=p.hint, id=p.check_id) for p in settings_problems()
    ]
    options = global_options()
    if options.KEEP_ALIVE_INTERVAL * 2 > options.CLIENT_TIMEOUT_INTERVAL:
        messages.append(
            checks.Warning(
                "CLIENT_TIMEOUT_INTERVAL should be at least twice KEEP_ALIVE_INTERVAL.",
                hint="Clients time out when they miss two pings; see the ASP.NET Core docs.",
                id="signalr.W001",
            )
        )
    messages.extend(_check_imports(options, "settings.SIGNALR"))
    messages.extend(_check_aliases(options))
    messages.extend(_check_filters())
    messages.extend(_check_rest_api(options))
    return messages


def _check_rest_api(options: Any) -> list[checks.CheckMessage]:
    """E040: SIGNALR['REST_API'] has its keys, and its hubs import."""
    from .exceptions import HubConfigurationError
    from .rest.config import parse

    try:
        parse(options.REST_API)
    except HubConfigurationError as exc:
        hint = "ACCESS_KEY, HUBS and TOKEN_LEEWAY are described in docs/rest-api.md."
        return [checks.Error(str(exc), hint=hint, id="signalr.E040")]
    return []


def _check_imports(options: Any, source: str, skip: Any = None) -> list[checks.CheckMessage]:
    """E006: dotted paths (AUTHENTICATOR, USER_ID_PROVIDER, ...) import and are callable.

    `skip`: options whose values were checked already (the settings, for an endpoint).
    """
    from django.utils.module_loading import import_string

    from .settings_schema import SCHEMA

    messages: list[checks.CheckMessage] = []
    for name, entry in SCHEMA.items():
        value = getattr(options, name, None)
        if not entry.importable or not isinstance(value, str):
            continue
        if skip is not None and getattr(skip, name, None) == value:
            continue
        try:
            target = import_string(value)
        except Exception as exc:  # ImportError, or a module that fails while importing
            problem = f"does not import ({type(exc).__name__}: {exc})"
        else:
            if callable(target):
                continue
            problem = "is not callable"
        messages.append(
            checks.Error(
                f"{name} {value!r} in {source} {problem}.",
                hint=f"{name}: {entry.meaning}. Give the full dotted path of a function "
                "or class that exists, e.g. 'myapp.auth.check_token'.",
                id="signalr.E006",
            )
        )
    return messages


def _check_aliases(options: Any) -> list[checks.CheckMessage]:
    """E007/E008: CHANNEL_LAYER names an entry of CHANNEL_LAYERS, LOAD_CACHE one of CACHES."""
    from django.conf import settings

    messages: list[checks.CheckMessage] = []
    layers = getattr(settings, "CHANNEL_LAYERS", None) or {}
    alias = options.CHANNEL_LAYER
    if alias not in layers and (layers or alias != "default"):
        messages.append(
            checks.Error(
                f"SIGNALR['CHANNEL_LAYER'] is {alias!r}, which is not in CHANNEL_LAYERS "
                f"({', '.join(map(repr, layers)) or 'empty'}).",
                hint="Name one of the CHANNEL_LAYERS aliases; hubs use it to reach other "
                "processes (and the hub context to reach the hubs).",
                id="signalr.E007",
            )
        )
    caches = getattr(settings, "CACHES", None) or {}
    if options.LOAD_CACHE not in caches:
        messages.append(
            checks.Error(
                f"SIGNALR['LOAD_CACHE'] is {options.LOAD_CACHE!r}, which is not in CACHES "
                f"({', '.join(map(repr, caches)) or 'empty'}).",
                hint="Name one of the CACHES aliases; workers keep load reports and "
                "connection claims there.",
                id="signalr.E008",
            )
        )
    return messages


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
    """Set-ups that work on a laptop and fail in production (W002-W007)."""
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
    elif getattr(settings, "WSGI_APPLICATION", None) and (
        not backend or backend.endswith("InMemoryChannelLayer")
    ):
        messages.append(_wsgi_site_reaches_nobody(options.CHANNEL_LAYER, backend))
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


def _wsgi_site_reaches_nobody(alias: str, backend: str) -> checks.CheckMessage:
    """W007, whatever DEBUG says: a WSGI site sends through a layer that stays in its process.

    With gunicorn (or any WSGI server) serving the pages and Daphne the hubs, a hub-context
    send from a view goes into the WSGI worker's own in-memory layer, where no connection
    lives: the view answers 200 and no client hears anything. WSGI_APPLICATION is the one
    sign of a WSGI site a check can see.
    """
    layer = f"the channel layer {alias!r} is in-memory" if backend else "no channel layer is set"
    return checks.Warning(
        f"WSGI_APPLICATION is set and {layer}: hub-context sends from the WSGI site "
        "(gunicorn, uWSGI) reach no client, because the connections live in the ASGI "
        "server's process and the in-memory layer does not leave the sending process.",
        hint="Use channels_redis.pubsub.RedisPubSubChannelLayer in CHANNEL_LAYERS. If one "
        "ASGI process serves the whole site, set WSGI_APPLICATION = None or add "
        "'signalr.W007' to SILENCED_SYSTEM_CHECKS.",
        id="signalr.W007",
    )


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


def check_hubs(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """E030/E006: the options of every hub and endpoint the project maps.

    Hubs are mapped in asgi.py, which `manage.py check` never imports: the check imports
    ASGI_APPLICATION (and ROOT_URLCONF) so that `map_hub` runs and a mistake in its
    options or in a hub's `options` is reported here, as one line naming the option,
    instead of as a traceback when the server starts.
    """
    from django.conf import settings
    from django.urls import get_resolver
    from django.utils.module_loading import import_string

    from .conf import endpoint_options, global_options
    from .dispatch.handler import mapped_endpoints
    from .exceptions import HubConfigurationError

    messages: list[checks.CheckMessage] = []
    loaders: list[tuple[str, Any]] = []
    path = getattr(settings, "ASGI_APPLICATION", None)
    if isinstance(path, str) and path:
        loaders.append((f"ASGI_APPLICATION ({path})", lambda: import_string(path)))
    loaders.append(("ROOT_URLCONF", lambda: get_resolver().url_patterns))
    for where, load in loaders:
        try:
            load()
        except HubConfigurationError as exc:
            messages.append(_bad_hub(str(exc), where))
        except Exception:  # Django, Channels or the server report what does not load
            continue
    settings_options = global_options()
    for hub_cls, route, overrides in mapped_endpoints():
        source = f"map_hub({route!r}, {hub_cls.__qualname__})"
        try:
            options = endpoint_options(hub_cls, overrides, source)
        except HubConfigurationError as exc:
            messages.append(_bad_hub(str(exc), source))
            continue
        messages.extend(_check_imports(options, source, skip=settings_options))
    return messages


def _bad_hub(message: str, where: str) -> checks.CheckMessage:
    return checks.Error(
        message,
        hint=f"Found while loading {where}. Fix the option in map_hub(...) or in the hub's "
        "`options`; the settings reference (docs/checks.md) lists each option's values.",
        id="signalr.E030",
    )


def register() -> None:
    """Register the checks (called from AppConfig.ready)."""
    checks.register(check_settings, "signalr")
    checks.register(check_deployment, "signalr", deploy=False)
    checks.register(check_hubs, "signalr")
