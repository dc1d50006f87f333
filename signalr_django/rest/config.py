"""`SIGNALR["REST_API"]`: the access keys, the hubs the REST API serves, the clock leeway.

Hubs are listed explicitly (`"HUBS": {"chat": "myapp.hubs.ChatHub"}`) rather than derived
from class names or routes: a REST caller can then reach exactly the hubs the project
chose to expose, under names that survive a class being renamed or moved. Names follow
Azure SignalR Service's rule (a letter, then letters, digits or underscores) and are
matched case-insensitively, as the service lower-cases them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.module_loading import import_string

from ..conf import global_options
from ..exceptions import HubConfigurationError

HUB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
DEFAULT_LEEWAY = 60.0
KNOWN_KEYS = frozenset({"ACCESS_KEY", "HUBS", "TOKEN_LEEWAY"})


@dataclass(frozen=True, slots=True)
class RestConfig:
    """The validated REST API settings; `hubs` maps lower-cased REST names to hub classes."""

    keys: tuple[str, ...]
    hubs: dict[str, type]
    leeway: float


def _fail(problem: str) -> HubConfigurationError:
    return HubConfigurationError(f'settings.SIGNALR["REST_API"]: {problem}')


def parse(value: Any) -> RestConfig | None:
    """`value` (the setting) validated; None when the REST API is off.

    Raises HubConfigurationError naming the bad key, so a mistake shows on the first
    request and in the system checks rather than as a 500 with a traceback.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _fail("expected a dict with ACCESS_KEY and HUBS.")
    unknown = sorted(set(value) - KNOWN_KEYS)
    if unknown:
        raise _fail(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}.")
    raw_keys = value.get("ACCESS_KEY")
    keys = (raw_keys,) if isinstance(raw_keys, str) else tuple(raw_keys or ())
    if not keys or not all(isinstance(k, str) and k for k in keys):
        raise _fail("ACCESS_KEY must be a non-empty string or a list of them.")
    hubs_setting = value.get("HUBS")
    if not isinstance(hubs_setting, dict) or not hubs_setting:
        raise _fail('HUBS must map REST hub names to hub classes, e.g. {"chat": "app.hubs.Chat"}.')
    hubs: dict[str, type] = {}
    for name, hub in hubs_setting.items():
        if not isinstance(name, str) or not HUB_NAME.match(name):
            raise _fail(
                f"hub name {name!r} must start with a letter and hold only letters, digits "
                "and underscores."
            )
        if name.lower() in hubs:
            raise _fail(f"hub name {name!r} is listed twice (names ignore case).")
        if isinstance(hub, str):
            try:
                hub = import_string(hub)
            except ImportError as exc:
                raise _fail(f"hub {name!r}: cannot import {hub!r} ({exc}).") from None
        if not isinstance(hub, type):
            raise _fail(f"hub {name!r} must be a hub class or its dotted path.")
        hubs[name.lower()] = hub
    leeway = value.get("TOKEN_LEEWAY", DEFAULT_LEEWAY)
    if isinstance(leeway, bool) or not isinstance(leeway, int | float) or leeway < 0:
        raise _fail("TOKEN_LEEWAY must be a number of seconds >= 0.")
    return RestConfig(keys, hubs, float(leeway))


_cached: tuple[object, RestConfig | None] | None = None


def rest_config() -> RestConfig | None:
    """The REST API settings of this process, parsed once per settings change."""
    global _cached
    options = global_options()
    if _cached is None or _cached[0] is not options:
        _cached = (options, parse(options.REST_API))
    return _cached[1]
