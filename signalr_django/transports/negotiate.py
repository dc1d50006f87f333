"""Negotiate: connection ids, secret connection tokens and the response body.

The connection token is stateless: it carries the public connection id, the time it was
issued and an HMAC over both and the user that negotiated, keyed by SECRET_KEY. Any worker
can verify it without shared state (the basis for running without sticky sessions), nobody
can forge one, and a token taken from one user is useless to another. Starting a connection
with a token also claims its id in the workers' shared cache (see `ownership`), so a token
starts one connection, on one worker, once.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from ..conf import HubOptions

TRANSFER_FORMATS = {
    "WebSockets": ["Text", "Binary"],
    "ServerSentEvents": ["Text"],
    "LongPolling": ["Text", "Binary"],
}
ORDER = ("WebSockets", "ServerSentEvents", "LongPolling")


def new_connection_id() -> str:
    """16 random bytes, base64url without padding (22 characters), as ASP.NET Core makes."""
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode("ascii")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@functools.lru_cache(maxsize=4)
def _token_key(secret: str) -> bytes:
    return hashlib.sha256(b"signalr_django.connection_token" + secret.encode()).digest()


def _signature(connection_id: str, issued: int, flags: str, owner: str, user_key: str) -> str:
    key = _token_key(settings.SECRET_KEY)
    message = f"{connection_id}|{issued}|{flags}|{owner}|{user_key}".encode()
    return _b64(hmac.new(key, message, hashlib.sha256).digest()[:18])


def make_connection_token(
    connection_id: str,
    user_key: str,
    stateful: bool = False,
    owner: str = "",
    legacy: bool = False,
) -> str:
    """A secret token naming `connection_id`, bound to the negotiating user.

    `stateful` records that stateful reconnect was negotiated; `legacy` a version 0
    negotiate, whose clients know the connection by the token itself; `owner` is the backplane
    channel of the worker that will hold the connection if it uses Server-Sent Events or
    long polling, so any worker that receives one of its requests can forward it there.
    """
    issued = int(time.time())
    flags = ("s" if stateful else "n") + ("0" if legacy else "")
    owner_part = _b64(owner.encode()) if owner else ""
    signature = _signature(connection_id, issued, flags, owner_part, user_key)
    return f"{connection_id}.{issued:x}.{flags}.{owner_part}.{signature}"


@dataclass(frozen=True, slots=True)
class ConnectionToken:
    """A verified token."""

    connection_id: str
    issued: int
    stateful: bool
    owner: str
    legacy: bool = False

    def public_id(self, token: str) -> str:
        """The id hubs see: version 0 clients know their connection by the token itself."""
        return token if self.legacy else self.connection_id


def read_connection_token(token: str, user_key: str) -> ConnectionToken | None:
    """Verify a token for the user of this request; None when forged, foreign or malformed.

    Every request of an SSE or long-polling connection carries its token, so the answer is
    remembered for the most recent tokens (keyed by the secret too, for a changed
    SECRET_KEY): a poll or a send then costs a lookup instead of an HMAC.
    """
    return _verified(token, user_key, settings.SECRET_KEY)


@functools.lru_cache(maxsize=1024)
def _verified(token: str, user_key: str, secret: str) -> ConnectionToken | None:
    parts = token.split(".")
    if len(parts) != 5 or len(token) > 400:
        return None
    connection_id, issued_hex, flags, owner_part, signature = parts
    try:
        issued = int(issued_hex, 16)
        owner = base64.urlsafe_b64decode(owner_part + "=" * (-len(owner_part) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    expected = _signature(connection_id, issued, flags, owner_part, user_key)
    if not hmac.compare_digest(expected, signature):
        return None
    return ConnectionToken(connection_id, issued, flags.startswith("s"), owner, flags.endswith("0"))


def user_key(user: Any) -> str:
    """What a token is bound to: the user's primary key, empty for anonymous users."""
    if user is None or not getattr(user, "is_authenticated", False):
        return ""
    return str(user.pk)


def parse_version(raw: str | None, options: HubOptions) -> int | str:
    """The negotiate version to answer with, or an error text."""
    if raw is None:
        version = 0
    else:
        try:
            version = int(raw)
        except ValueError:
            return "The client requested a non-integer protocol version."
    if version < options.MINIMUM_NEGOTIATE_VERSION:
        return (
            f"The client requested version '{version}', but the server does not support "
            "this version."
        )
    return min(version, 1)


def negotiate_body(
    version: int, connection_id: str, token: str, options: HubOptions, stateful: bool = False
) -> bytes:
    """The negotiate response, transports in server order (the JS client keeps that order)."""
    # Version 0 has no separate token: the id itself is sent back as `id`, so it must be
    # the signed token (as in ASP.NET Core, where a v0 id is also the token).
    body: dict[str, Any] = {"useStatefulReconnect": True} if stateful else {}
    body |= {
        "negotiateVersion": version,
        "connectionId": connection_id if version > 0 else token,
    }
    if version > 0:
        body["connectionToken"] = token
    body["availableTransports"] = [
        {"transport": name, "transferFormats": TRANSFER_FORMATS[name]}
        for name in ORDER
        if name in options.TRANSPORTS
    ]
    return json.dumps(body, separators=(",", ":")).encode()


def error_body(message: str) -> bytes:
    """A negotiate error: status 200 with only an `error` property, as the clients expect."""
    return json.dumps({"error": message}, separators=(",", ":")).encode()
