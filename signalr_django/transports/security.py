"""Who may connect: bearer tokens and sessions, hub-level authorization, and Origin checks.

Cookies ride along on cross-site WebSocket requests, so a browser page on another site
could otherwise open a connection as the logged-in user (cross-site WebSocket hijacking).
Requests that carry an `Origin` must therefore come from an allowed origin: a host in
ALLOWED_HOSTS (the same check Channels' `AllowedHostsOriginValidator` makes), or one listed
in ALLOWED_ORIGINS or CORS_ALLOWED_ORIGINS. Clients that send no Origin (Node, .NET, Python
clients) are not browsers and are not subject to the check.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.module_loading import import_string

from ..auth import AUTH_ATTR, Requirement, bearer_token, check_requirement, is_authenticated
from ..conf import HubOptions


class AuthenticationFailed(Exception):
    """A bearer token was presented and rejected."""


def header(scope: dict[str, Any], name: bytes) -> str | None:
    """One request header, decoded."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None


def origin_allowed(scope: dict[str, Any], options: HubOptions) -> bool:
    """Whether the request's Origin (if any) may use this hub."""
    origin = header(scope, b"origin")
    if origin is None:
        return True
    allowed = options.ALLOWED_ORIGINS
    if allowed is not None and ("*" in allowed or origin in allowed):
        return True
    if origin in options.CORS_ALLOWED_ORIGINS:
        return True
    if allowed is not None and origin == "null":
        return False
    host = urlsplit(origin).netloc
    if not host:
        return False
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = [".localhost", "127.0.0.1", "[::1]"]
    domain, _port = split_domain_port(host.rsplit("@", 1)[-1])
    return bool(domain) and validate_host(domain, hosts)


async def authenticate(scope: dict[str, Any], options: HubOptions) -> Any:
    """The request's user: a valid bearer token's user, else the session's, else anonymous."""
    token = bearer_token(scope)
    if token and options.AUTHENTICATOR:
        authenticator = import_string(options.AUTHENTICATOR)
        user = await authenticator(scope, token)
        if user is None:
            raise AuthenticationFailed("Invalid or expired access token.")
        return user
    user = scope.get("user")
    if user is None:
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser()
    return user


async def hub_allows(hub_cls: type, user: Any, options: HubOptions | None = None) -> bool:
    """Whether `@authorize` on the hub class and the endpoint's AUTHORIZE let `user` in."""
    requirement: Requirement | None = getattr(hub_cls, AUTH_ATTR, None)
    if requirement is not None and not await check_requirement(user, requirement):
        return False
    extra: Requirement | None = options.AUTHORIZE if options is not None else None
    return extra is None or await check_requirement(user, extra)


def requires_authentication(hub_cls: type, options: HubOptions) -> bool:
    """Whether only signed-in users may use this endpoint (`@authorize` or AUTHORIZE)."""
    return getattr(hub_cls, AUTH_ATTR, None) is not None or options.AUTHORIZE is not None


__all__ = [
    "AuthenticationFailed",
    "authenticate",
    "hub_allows",
    "is_authenticated",
    "origin_allowed",
    "requires_authentication",
]
