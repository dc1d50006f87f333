"""User-id providers: which string `clients.user(...)` addresses a connection by.

The id a provider returns is checked against MAXIMUM_USER_ID_LENGTH. An id over the cap
refuses the connection with a handshake error naming the setting, rather than quietly
treating the connection as anonymous: an ASP.NET Core developer expects an authenticated
connection to be reachable by `Clients.User(id)`, and a silent downgrade would lose its
messages without a trace, while a refused handshake shows the problem at once (in the
client's error and in one warning line on the server).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

from .core.logs import warn_limited
from .exceptions import HandshakeError

UserIdProvider = Callable[[Any, dict[str, Any]], str | None]

USER_ID_SETTING = "MAXIMUM_USER_ID_LENGTH"


def default_user_id(user: Any, scope: dict[str, Any]) -> str | None:
    """The authenticated Django user's primary key as a string; None for anonymous users."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


def user_id_too_long(max_length: int) -> str:
    """The handshake error for a user id over the cap (the id itself is never shown)."""
    return (
        f"The user id is longer than {max_length} characters "
        f"(limit {max_length}, setting {USER_ID_SETTING})."
    )


@cache
def load_provider(path: str, max_length: int | None = None) -> UserIdProvider:
    """The provider named in USER_ID_PROVIDER (imported once), checking the id's length.

    The returned callable raises HandshakeError for an id longer than `max_length`.
    """
    provider: UserIdProvider = import_string(path)
    if max_length is None:
        return provider

    def checked(user: Any, scope: dict[str, Any]) -> str | None:
        user_id = provider(user, scope)
        if user_id is not None and len(user_id) > max_length:
            warn_limited(
                "cap",
                "Connection refused: the user id from %s has %d characters, over %s (%d)",
                path,
                len(user_id),
                USER_ID_SETTING,
                max_length,
            )
            raise HandshakeError(user_id_too_long(max_length))
        return user_id

    return checked
