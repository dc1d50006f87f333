"""The identity a forwarded request carries: who the forwarding worker authenticated.

A long poll, a send, a DELETE or an SSE stream that reaches a worker other than the one
holding the connection is forwarded to the owner over the channel layer (see `forwarding`).
The owner cannot authenticate it again: the session middleware ran on the forwarding
worker, not on the owner's relay, and re-running a bearer authenticator would cost a
database query per request. So the worker where the request arrives authenticates it as
the owner would (session cookie or bearer token), and sends the result along, signed with
SECRET_KEY (`django.core.signing`, salted for this use), valid for `MAX_AGE` seconds and
bound to the forwarded request's id and hub. The owner checks the signature and trusts the
identity without touching the database; a request without one, with a forged, expired or
replayed-onto-another-request one, is refused (`read_identity` answers None).

What the identity holds depends on the user:
- anonymous: nothing but that;
- a `TokenUser` (embedded access tokens): its whole snapshot, so the owner rebuilds the
  same `TokenUser` a direct request would have given it;
- a user of the project's user model (session or plain bearer token): its primary key; the
  owner fetches the model instance only when the forwarded request starts the connection
  (one query, as a direct request's authentication costs), so hubs see the same kind of
  user whichever worker the client's first request reached;
- any other user object (a custom AUTHENTICATOR): its key, name and staff flags, rebuilt
  as a `TokenUser` (permissions: `await user.load()`).
Every later request of the connection only needs the key the connection token is bound to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core import signing

from ..auth import TokenUser

SALT = "signalr_django.forwarded_identity"
# Long enough for a worker under load and some clock skew between hosts, short enough that
# a captured identity is of little use (it is bound to one request id anyway).
MAX_AGE = 60

ANONYMOUS = "a"
MODEL = "m"
SNAPSHOT = "t"


@dataclass(frozen=True, slots=True)
class ForwardedIdentity:
    """A verified identity from a forwarding worker."""

    kind: str
    user_key: str
    snapshot: dict[str, Any] = field(default_factory=dict)
    # When the relaying worker's authentication of the user expires (Unix time), if known.
    expires: float | None = None

    async def user(self) -> Any:
        """The user for a connection this request starts; None if the user is gone."""
        if self.kind == ANONYMOUS:
            from django.contrib.auth.models import AnonymousUser

            return AnonymousUser()
        if self.kind == SNAPSHOT:
            return TokenUser(self.snapshot)
        from channels.db import database_sync_to_async
        from django.contrib.auth import get_user_model

        def load() -> Any:
            model = get_user_model()
            try:
                user = model._default_manager.get(pk=self.user_key)
            except (model.DoesNotExist, ValueError):
                return None
            return user if getattr(user, "is_active", True) else None

        return await database_sync_to_async(load)()


def _snapshot(user: Any) -> dict[str, Any]:
    return {
        "u": str(user.pk),
        "n": str(user.get_username()) if hasattr(user, "get_username") else str(user),
        "s": bool(getattr(user, "is_staff", False)),
        "su": bool(getattr(user, "is_superuser", False)),
    }


def describe(user: Any) -> dict[str, Any]:
    """What the owner needs to know about `user` (no database access)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {"k": ANONYMOUS}
    if isinstance(user, TokenUser):
        return {"k": SNAPSHOT, "d": {**_snapshot(user), "p": sorted(user.get_all_permissions())}}
    from django.contrib.auth import get_user_model

    if isinstance(user, get_user_model()):
        return {"k": MODEL, "u": str(user.pk)}
    return {"k": SNAPSHOT, "d": _snapshot(user)}


def sign_identity(user: Any, request_id: str, hub: str, expires: float | None = None) -> str:
    """The signed identity of `user` for the forwarded request `request_id` to `hub`."""
    payload = {**describe(user), "r": request_id, "h": hub}
    if expires is not None:
        payload["x"] = expires
    return signing.dumps(payload, salt=SALT, compress=True)


def read_identity(signed: Any, request_id: str, hub: str) -> ForwardedIdentity | None:
    """Verify a forwarded identity; None when missing, forged, expired or for another request."""
    if not isinstance(signed, str) or not signed or len(signed) > 16_384:
        return None
    try:
        data = signing.loads(signed, salt=SALT, max_age=MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(data, dict) or data.get("r") != request_id or data.get("h") != hub:
        return None
    kind = data.get("k")
    expires = data.get("x")
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        expires = None
    if kind == ANONYMOUS:
        return ForwardedIdentity(ANONYMOUS, "")
    if kind == MODEL and isinstance(data.get("u"), str):
        return ForwardedIdentity(MODEL, data["u"], expires=expires)
    snapshot = data.get("d")
    if kind == SNAPSHOT and isinstance(snapshot, dict) and isinstance(snapshot.get("u"), str):
        return ForwardedIdentity(SNAPSHOT, snapshot["u"], snapshot, expires)
    return None
