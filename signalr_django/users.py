"""User-id providers: which string `clients.user(...)` addresses a connection by."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from django.utils.module_loading import import_string

UserIdProvider = Callable[[Any, dict[str, Any]], str | None]


def default_user_id(user: Any, scope: dict[str, Any]) -> str | None:
    """The authenticated Django user's primary key as a string; None for anonymous users."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return str(user.pk)


@cache
def load_provider(path: str) -> UserIdProvider:
    """Import the provider named in USER_ID_PROVIDER once."""
    provider: UserIdProvider = import_string(path)
    return provider
