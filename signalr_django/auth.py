"""Authentication and authorization for hubs.

Browsers cannot set headers on WebSockets or EventSource, so the official clients send the
bearer token as the `access_token` query parameter there and as `Authorization: Bearer`
everywhere else; both are read for every hub request. Session cookies work too when the
hub's ASGI stack includes Channels' `AuthMiddlewareStack`; a valid bearer token wins.

The default authenticator accepts tokens made by `create_access_token`: signed with the
project's SECRET_KEY, time-limited, verifiable by any worker without shared state.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

from django.core import signing

TOKEN_SALT = "signalr_django.access_token"

# Where an authenticator records when the authentication it made expires (Unix time), for
# CLOSE_ON_AUTHENTICATION_EXPIRATION; `signed_token_authenticator` always does.
AUTH_EXPIRES = "signalr.auth_expires"

Authenticator = Callable[[dict[str, Any], str], Awaitable[Any]]

T = TypeVar("T")


def create_access_token(user: Any, embed: bool = False, max_age: float | None = None) -> str:
    """A signed bearer token for `user`, accepted by `signed_token_authenticator`.

    With `embed=True` the token carries the user's name, staff flags and permissions, so a
    worker accepts it without a database round trip (the negotiate redirect uses this);
    `max_age` (seconds) then limits the token itself, shorter than ACCESS_TOKEN_MAX_AGE.
    """
    data: dict[str, Any] = {"u": str(user.pk)}
    if embed:
        data["n"] = user.get_username()
        data["s"] = bool(getattr(user, "is_staff", False))
        data["su"] = bool(getattr(user, "is_superuser", False))
        data["p"] = (
            sorted(user.get_all_permissions()) if hasattr(user, "get_all_permissions") else []
        )
        if max_age is not None:
            data["x"] = time.time() + max_age
    return signing.dumps(data, salt=TOKEN_SALT, compress=embed)


class TokenUser:
    """The user of an embedded access token: what the token says, with no database access.

    It quacks like a Django user for what hubs usually need: `pk`, `id`, `username`,
    `get_username()`, `is_authenticated`, `is_staff`, `is_superuser`, `has_perm(s)`.
    `load()` fetches the real user object when a hub needs more.
    """

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, data: dict[str, Any]) -> None:
        self.pk: str = data["u"]
        self.id = self.pk
        self.username: str = data.get("n", "")
        self.is_staff: bool = data.get("s", False)
        self.is_superuser: bool = data.get("su", False)
        self._perms = frozenset(data.get("p", ()))

    def get_username(self) -> str:
        """The username carried by the token."""
        return self.username

    def __str__(self) -> str:
        return self.username

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        """Permission check against the token's snapshot (superusers have all)."""
        return self.is_superuser or perm in self._perms

    def has_perms(self, perms: Iterable[str], obj: Any = None) -> bool:
        """All of `perms`."""
        return all(self.has_perm(p) for p in perms)

    def get_all_permissions(self, obj: Any = None) -> set[str]:
        """The token's permission snapshot."""
        return set(self._perms)

    async def load(self) -> Any:
        """The real user model instance (one database query)."""
        from channels.db import database_sync_to_async
        from django.contrib.auth import get_user_model

        model = get_user_model()
        return await database_sync_to_async(model._default_manager.get)(pk=self.pk)


async def signed_token_authenticator(scope: dict[str, Any], token: str) -> Any:
    """Resolve a token from `create_access_token` to its user; None when it is invalid."""
    from channels.db import database_sync_to_async

    from .conf import global_options

    max_age = global_options().ACCESS_TOKEN_MAX_AGE
    try:
        data = signing.loads(token, salt=TOKEN_SALT, max_age=int(max_age))
    except signing.BadSignature:
        return None
    pk = data.get("u") if isinstance(data, dict) else None
    if pk is None:
        return None
    expires = _signed_at(token) + int(max_age)
    if "x" in data:
        expires = min(expires, float(data["x"]))
    scope[AUTH_EXPIRES] = expires
    if "n" in data:
        if "x" in data and time.time() > data["x"]:
            return None
        return TokenUser(data)

    def load() -> Any:
        from django.contrib.auth import get_user_model

        model = get_user_model()
        try:
            user = model._default_manager.get(pk=pk)
        except (model.DoesNotExist, ValueError):
            return None
        return user if getattr(user, "is_active", True) else None

    return await database_sync_to_async(load)()


def _signed_at(token: str) -> float:
    """When a verified token was signed (its base62 timestamp, as Django's signer writes it)."""
    return float(signing.b62_decode(token.rsplit(":", 2)[-2]))


async def authentication_expiry(scope: dict[str, Any], user: Any) -> float | None:
    """When the authentication of `user` for this request expires (Unix time), if it does.

    A bearer token's expiry, as its authenticator recorded it; else, for a user that came
    from the session (Channels' AuthMiddlewareStack), the session's expiry date.
    """
    if not is_authenticated(user):
        return None
    expires = scope.get(AUTH_EXPIRES)
    if expires is not None:
        return float(expires)
    session = scope.get("session")
    if session is None or bearer_token(scope) is not None or scope.get("user") is not user:
        return None
    from channels.db import database_sync_to_async

    def read() -> float:
        return float(session.get_expiry_date().timestamp())

    result: float = await database_sync_to_async(read)()
    return result


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


def as_requirement(value: Any, source: str = "AUTHORIZE") -> Requirement | None:
    """The AUTHORIZE option as a Requirement: None/False, True, a Requirement, or a dict
    of `@authorize`'s keyword arguments (`permissions`, `test`)."""
    from .exceptions import HubConfigurationError

    if value is None or value is False:
        return None
    if value is True:
        return Requirement()
    if isinstance(value, Requirement):
        return value
    if isinstance(value, dict) and set(value) <= {"permissions", "test"}:
        permissions = value.get("permissions", ())
        test = value.get("test")
        if isinstance(permissions, str) or not all(isinstance(p, str) for p in permissions):
            raise HubConfigurationError(
                f"AUTHORIZE['permissions'] in {source} must be a list of permission names."
            )
        if test is not None and not callable(test):
            raise HubConfigurationError(f"AUTHORIZE['test'] in {source} must be callable.")
        return Requirement(tuple(permissions), test)
    raise HubConfigurationError(
        f"Bad value {value!r} for AUTHORIZE in {source}: expected True, None or a dict "
        "with 'permissions' (a list of permission names) and/or 'test' (a callable)."
    )


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
