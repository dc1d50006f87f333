"""What each REST operation does, in terms of the sync hub context and presence queries.

The views only parse, authenticate and map outcomes to status codes; everything that
touches connections goes through here, so the REST API has a single seam onto the hub
context (sends, connection group membership) and onto presence (existence checks,
closing, and user group membership, which is applied to the user's current connections).

Existence answers come from every worker. When a worker did not answer and the others
said "no", the honest answer is "unknown": `IncompleteAnswer` is raised and the view
answers 503 rather than a 404 that may be wrong.
"""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from ..context import get_sync_hub_context
from ..exceptions import ConnectionNotFoundError
from ..presence.answer import Answer

T = TypeVar("T")
P = ParamSpec("P")


def detached(operation: Callable[P, T]) -> Callable[P, T]:
    """Run `operation` in an empty context, so the coroutines it starts do not inherit the
    request's.

    Under Daphne a sync view runs in the request's thread-sensitive executor, and the sync
    hub context hands its coroutine to the server's loop with the caller's context. A cache
    read in that coroutine (the worker registry a presence query consults) then waits for
    that same executor, which is busy waiting for the coroutine: the call would hang until
    the sync context's timeout. Started from an empty context, such reads use asgiref's
    shared executor instead. Under gunicorn nothing changes.
    """

    @functools.wraps(operation)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        return contextvars.Context().run(operation, *args, **kwargs)

    return run


class IncompleteAnswer(Exception):
    """Some workers did not answer a query, and the others' answers do not settle it."""

    def __init__(self, missing: Iterable[str]) -> None:
        self.missing = tuple(missing)
        super().__init__(f"Workers {', '.join(self.missing)} did not answer in time; try again.")


def _settled(answer: Answer[T], found: bool) -> bool:
    """`found` when the answer is positive or complete, else IncompleteAnswer."""
    if found or answer.complete:
        return found
    raise IncompleteAnswer(answer.workers_missing)


# -- sends ---------------------------------------------------------------------------------


@detached
def send_all(hub: type, target: str, arguments: list[Any], excluded: list[str]) -> None:
    """Every connection of the hub but the `excluded` ones."""
    clients = get_sync_hub_context(hub).clients
    proxy = clients.all_except(excluded) if excluded else clients.all
    proxy.send(target, *arguments)


@detached
def send_group(
    hub: type, group: str, target: str, arguments: list[Any], excluded: list[str]
) -> None:
    """The members of `group` but the `excluded` connections."""
    clients = get_sync_hub_context(hub).clients
    proxy = clients.group_except(group, excluded) if excluded else clients.group(group)
    proxy.send(target, *arguments)


@detached
def send_user(hub: type, user: str, target: str, arguments: list[Any]) -> None:
    """Every connection of `user`."""
    get_sync_hub_context(hub).clients.user(user).send(target, *arguments)


@detached
def send_connection(hub: type, connection_id: str, target: str, arguments: list[Any]) -> None:
    """One connection (nothing happens when it does not exist, as with the hub context)."""
    get_sync_hub_context(hub).clients.client(connection_id).send(target, *arguments)


# -- connection groups ---------------------------------------------------------------------


@detached
def add_connection_to_group(hub: type, connection_id: str, group: str) -> None:
    """Raises ConnectionNotFoundError when no worker holds the connection."""
    get_sync_hub_context(hub).groups.add_to_group(connection_id, group)


@detached
def remove_connection_from_group(hub: type, connection_id: str, group: str) -> None:
    """Raises ConnectionNotFoundError when no worker holds the connection."""
    get_sync_hub_context(hub).groups.remove_from_group(connection_id, group)


@detached
def remove_connection_from_all_groups(hub: type, connection_id: str) -> None:
    """Raises ConnectionNotFoundError when no worker holds the connection."""
    context = get_sync_hub_context(hub)
    answer = context.presence.connection_groups(connection_id)
    if answer.value is None:
        _settled(answer, False)
        raise ConnectionNotFoundError(f"Connection '{connection_id}' does not exist.")
    for group in answer.value:
        context.groups.remove_from_group(connection_id, group)


# -- users and groups ----------------------------------------------------------------------


def _user_connections(hub: type, user: str) -> list[str]:
    answer = get_sync_hub_context(hub).presence.user_connections(user)
    return list(answer.value)


@detached
def add_user_to_group(hub: type, user: str, group: str) -> None:
    """Add every connection `user` has now to `group` (across workers)."""
    groups = get_sync_hub_context(hub).groups
    for connection_id in _user_connections(hub, user):
        try:
            groups.add_to_group(connection_id, group)
        except ConnectionNotFoundError:
            pass  # it ended since the query: nothing to add


@detached
def remove_user_from_group(hub: type, user: str, group: str) -> None:
    """Remove every connection of `user` from `group`."""
    groups = get_sync_hub_context(hub).groups
    for connection_id in _user_connections(hub, user):
        try:
            groups.remove_from_group(connection_id, group)
        except ConnectionNotFoundError:
            pass


@detached
def remove_user_from_all_groups(hub: type, user: str) -> None:
    """Remove every connection of `user` from every group it is in."""
    for connection_id in _user_connections(hub, user):
        try:
            remove_connection_from_all_groups(hub, connection_id)
        except (ConnectionNotFoundError, IncompleteAnswer):
            pass


# -- existence -----------------------------------------------------------------------------


@detached
def connection_exists(hub: type, connection_id: str) -> bool:
    """Whether a worker holds `connection_id`."""
    answer = get_sync_hub_context(hub).presence.connection_groups(connection_id)
    return _settled(answer, answer.value is not None)


@detached
def group_exists(hub: type, group: str) -> bool:
    """Whether `group` has at least one connection."""
    answer = get_sync_hub_context(hub).presence.group_member_count(group)
    return _settled(answer, answer.value > 0)


@detached
def user_exists(hub: type, user: str) -> bool:
    """Whether `user` has at least one connection."""
    answer = get_sync_hub_context(hub).presence.user_connection_count(user)
    return _settled(answer, answer.value > 0)


@detached
def user_in_group(hub: type, user: str, group: str) -> bool:
    """Whether at least one connection of `user` is in `group`."""
    presence = get_sync_hub_context(hub).presence
    connections = presence.user_connections(user)
    for connection_id in connections.value:
        groups = presence.connection_groups(connection_id)
        if groups.value is not None and group in groups.value:
            return True
        if groups.value is None:
            _settled(groups, False)  # its worker did not answer this time: unknown
    return _settled(connections, False)


# -- closing -------------------------------------------------------------------------------


@detached
def close_connection(hub: type, connection_id: str, reason: str | None) -> bool:
    """Close a connection wherever it is; False when no worker holds it."""
    return get_sync_hub_context(hub).close_connection(connection_id, reason)


@detached
def close_user_connections(
    hub: type, user: str, reason: str | None, excluded: Iterable[str]
) -> None:
    """Close every connection of `user` but the `excluded` ones."""
    skip = frozenset(excluded)
    context = get_sync_hub_context(hub)
    for connection_id in _user_connections(hub, user):
        if connection_id not in skip:
            context.close_connection(connection_id, reason)
