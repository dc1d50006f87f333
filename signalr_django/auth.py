"""Authentication and authorization for hubs.

Browsers cannot set headers on WebSockets or EventSource, so the official clients send the
bearer token as the `access_token` query parameter there and as `Authorization: Bearer`
everywhere else; both are read for every hub request. Session cookies work too when the
hub's ASGI stack includes Channels' `AuthMiddlewareStack`; a valid bearer token wins.

The default authenticator accepts tokens made by `create_access_token`: signed with the
project's SECRET_KEY, time-limited, verifiable by any worker without shared state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

from django.core import signing

TOKEN_SALT = "signalr_django.access_token"

Authenticator = Callable[[dict[str, Any], str], Awaitable[Any]]

T = TypeVar("T")


def create_access_token(user: Any) -> str:
    """A signed bearer token for `user`, accepted by `signed_token_authenticator`."""
    return signing.dumps({"u": str(user.pk)}, salt=TOKEN_SALT, compress=False)


async def signed_token_authenticator(scope: dict[str, Any], token: str) -> Any:
    """Resolve a token from `create_access_token` to its user; None when it is invalid."""
    from channels.db import database_sync_to_async

    from .conf import global_options

    try:
        data = signing.loads(
            token, salt=TOKEN_SALT, max_age=int(global_options().ACCESS_TOKEN_MAX_AGE)
        )
    except signing.BadSignature:
        return None
    pk = data.get("u") if isinstance(data, dict) else None
    if pk is None:
        return None

    def load() -> Any:
        from django.contrib.auth import get_user_model

        model = get_user_model()
        try:
            user = model._default_manager.get(pk=pk)
        except (model.DoesNotExist, ValueError):
            return None
        return user if getattr(user, "is_active", True) else None

    return await database_sync_to_async(load)()


def bearer_token(scope: dict[str, Any]) -> str | None:
    """The token of a request: `Authorization: Bearer ...`, else `?access_token=...`."""
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return str(token.strip())
    query = scope.get("query_string", b"")
    if b"access_token=" in query:
        for key, val in parse_qsl(query.decode("latin-1")):
            if key == "access_token" and val:
                return str(val)
    return None


@dataclass(frozen=True, slots=True)
class Requirement:
    """What `@authorize` asks of the connection's user."""

    permissions: tuple[str, ...] = ()
    test: Callable[[Any], bool] | None = None


AUTH_ATTR = "_signalr_authorize"


@overload
def authorize(target: T, /) -> T: ...


@overload
def authorize(
    *, permissions: Iterable[str] = (), test: Callable[[Any], bool] | None = None
) -> Callable[[T], T]: ...


def authorize(
    target: Any = None,
    /,
    *,
    permissions: Iterable[str] = (),
    test: Callable[[Any], bool] | None = None,
) -> Any:
    """Require an authenticated user for a whole hub (class) or one hub method.

    `permissions` are Django permission names (`"app.codename"`); `test` is a predicate
    on the user. On a hub, negotiate answers 401 and connections are refused; on a method,
    the invocation fails with "Failed to invoke '...' because user is unauthorized".
    """
    requirement = Requirement(tuple(permissions), test)

    def mark(obj: T) -> T:
        setattr(obj, AUTH_ATTR, requirement)
        return obj

    if target is not None:
        return mark(target)
    return mark


def is_authenticated(user: Any) -> bool:
    """True for a logged-in Django user."""
    return bool(user is not None and getattr(user, "is_authenticated", False))


async def check_requirement(user: Any, requirement: Requirement) -> bool:
    """Whether `user` meets `requirement` (permission checks run off the event loop)."""
    if not is_authenticated(user):
        return False
    if not requirement.permissions and requirement.test is None:
        return True
    from channels.db import database_sync_to_async

    def check() -> bool:
        if requirement.permissions and not user.has_perms(requirement.permissions):
            return False
        return requirement.test is None or bool(requirement.test(user))

    result: bool = await database_sync_to_async(check)()
    return result
