"""Which hubs a project serves: the `map_hub` patterns reachable from its applications.

The ASGI application (`ASGI_APPLICATION`) is walked through the shapes Channels and Django
build: `ProtocolTypeRouter.application_mapping`, middleware's `inner` (or `app`),
`URLRouter.routes`, and URL patterns and resolvers. `ROOT_URLCONF` is walked too, for
projects that route hubs there. Anything else is a leaf: an application the walk does not
know how to open hides no hub it could have reported anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .hubs import MappedHub


def mapped_hubs(warn: Callable[[str], None] = lambda message: None) -> list[MappedHub]:
    """Every hub class served by the project, with its routes, in the order first found."""
    from django.conf import settings
    from django.urls import get_resolver
    from django.utils.module_loading import import_string

    roots: list[Any] = []
    path = getattr(settings, "ASGI_APPLICATION", None)
    if path:
        try:
            roots.append(import_string(path))
        except Exception as exc:
            warn(f"ASGI_APPLICATION {path!r} does not import ({exc}); skipping it.")
    try:
        roots.append(get_resolver())
    except Exception as exc:
        warn(f"ROOT_URLCONF does not load ({exc}); skipping it.")
    return hubs_in(roots)


def hubs_in(roots: Iterable[Any]) -> list[MappedHub]:
    """The hubs reachable from `roots` (ASGI applications, URL patterns or resolvers)."""
    from ..endpoint import HubEndpoint

    found: dict[type, list[str]] = {}
    seen: set[int] = set()

    def visit(node: Any, prefix: str, depth: int) -> None:
        if node is None or id(node) in seen or depth > 50:
            return
        seen.add(id(node))
        if isinstance(node, list | tuple):
            visit_all(node, prefix, depth + 1)
            return
        if isinstance(node, HubEndpoint):
            routes = found.setdefault(node.hub_cls, [])
            route = _join(prefix, node.route)
            if route not in routes:
                routes.append(route)
            return
        pattern = _attr(node, "pattern")
        callback = _attr(node, "callback")
        if pattern is not None and callback is not None:  # a URLPattern (Django or Channels)
            visit(callback, prefix, depth + 1)
            return
        patterns = _attr(node, "url_patterns")
        if pattern is not None and patterns is not None:  # a URLResolver (include())
            visit_all(patterns, _join(prefix, _literal_prefix(str(pattern))), depth + 1)
            return
        mapping = _attr(node, "application_mapping")
        if isinstance(mapping, dict):
            visit_all(mapping.values(), prefix, depth + 1)
        children = _attr(node, "routes")
        if isinstance(children, list | tuple):
            visit_all(children, prefix, depth + 1)
        elif patterns is not None and not isinstance(patterns, str):
            visit_all(patterns, prefix, depth + 1)
        for attr in ("inner", "app", "application"):
            inner = _attr(node, attr)
            if inner is not None and not isinstance(inner, str | int | float | bool | dict):
                visit(inner, prefix, depth + 1)

    def visit_all(nodes: Any, prefix: str, depth: int) -> None:
        try:
            items = list(nodes)
        except Exception:
            return
        for item in items:
            visit(item, prefix, depth)

    visit_all(roots, "", 0)
    return [MappedHub(hub_cls, tuple(routes)) for hub_cls, routes in found.items()]


def _attr(node: Any, name: str) -> Any:
    """`getattr` that treats a failing property (of an application it does not know) as
    absent: walking must not stop on it."""
    try:
        return getattr(node, name, None)
    except Exception:
        return None


def _literal_prefix(pattern: str) -> str:
    """The literal text of an `include()` prefix (`^api/` or `api/` -> `api/`)."""
    text = pattern.lstrip("^").rstrip("$")
    return text if all(c not in text for c in "()[]{}?*+\\|<>") else ""


def _join(prefix: str, route: str) -> str:
    return "/".join(part.strip("/") for part in (prefix, route) if part.strip("/"))


def import_hubs(paths: Iterable[str], known: Iterable[MappedHub] = ()) -> list[MappedHub]:
    """The hub classes at `paths` (dotted), with the routes `known` gives them.

    Raises ValueError with a message for the user when a path does not import or is not
    a hub class.
    """
    from django.utils.module_loading import import_string

    from ..hub import Hub

    routes = {hub.hub_cls: hub.routes for hub in known}
    hubs: list[MappedHub] = []
    for path in paths:
        try:
            obj = import_string(path)
        except ImportError as exc:
            raise ValueError(f"{path!r} does not import: {exc}") from None
        if not (isinstance(obj, type) and issubclass(obj, Hub)):
            raise ValueError(f"{path!r} is not a Hub subclass.")
        if all(hub.hub_cls is not obj for hub in hubs):
            hubs.append(MappedHub(obj, routes.get(obj, ())))
    return hubs
