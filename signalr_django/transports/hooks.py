"""NEGOTIATE_RESPONSE_HOOK: headers and cookies added to a successful negotiate response.

Load balancers pin a client to a server with an affinity cookie, and some sites set a CSRF
cookie with the first response a page's script gets; the negotiate response is that
response for a hub. The hook is called as `hook(scope, user, headers)` and appends
`(name, value)` pairs (bytes or str) to `headers`; it may be async. Each pair is checked,
so a hook cannot split the response with a stray newline.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from django.utils.module_loading import import_string

from ..conf import HubOptions

Hook = Callable[[dict[str, Any], Any, list[tuple[bytes, bytes]]], Any]

_loaded: dict[str, Hook] = {}


def load_hook(value: Any) -> Hook | None:
    """The hook named by the option: a callable, its dotted path, or None."""
    if value is None or callable(value):
        return value  # type: ignore[no-any-return]
    hook = _loaded.get(value)
    if hook is None:
        hook = _loaded[value] = import_string(value)
    return hook


def _as_bytes(value: Any) -> bytes:
    data = value.encode("latin-1") if isinstance(value, str) else value
    if not isinstance(data, bytes) or b"\r" in data or b"\n" in data or b"\0" in data:
        raise ValueError(f"NEGOTIATE_RESPONSE_HOOK added an invalid header part: {value!r}")
    return data


async def negotiate_headers(
    options: HubOptions, scope: dict[str, Any], user: Any
) -> list[tuple[bytes, bytes]]:
    """The headers the endpoint's hook adds (none without a hook); raises what it raises."""
    hook = load_hook(options.NEGOTIATE_RESPONSE_HOOK)
    if hook is None:
        return []
    headers: list[tuple[bytes, bytes]] = []
    result = hook(scope, user, headers)
    if inspect.isawaitable(result):
        await result
    checked = []
    for pair in headers:
        name, value = pair
        if not _as_bytes(name).strip() or b":" in _as_bytes(name):
            raise ValueError(f"NEGOTIATE_RESPONSE_HOOK added an invalid header name: {name!r}")
        checked.append((_as_bytes(name).lower(), _as_bytes(value)))
    return checked
