"""Answers to cluster-wide queries, and how the workers' parts of one are merged.

Pure code (no I/O): the scatter-gather in `gather.py` collects one part per worker and
calls `merge` with them, so the rules are unit-tested without servers. Each query kind has
one rule, chosen so that merging is exact when every worker answered:

- counts (connections, a user's connections, a group's members) add up;
- id lists (a user's connections, the hub's connections) concatenate, capped at `limit`;
- `groups` maps names to member counts, which add up per name;
- `connection_groups` comes from the one worker holding the connection (None elsewhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")

COUNT = "count"
USER_COUNT = "user_count"
USER_CONNECTIONS = "user_connections"
GROUP_COUNT = "group_count"
CONNECTION_GROUPS = "connection_groups"
GROUPS = "groups"
CONNECTIONS = "connections"
STATUS = "status"

KINDS = frozenset(
    {COUNT, USER_COUNT, USER_CONNECTIONS, GROUP_COUNT, CONNECTION_GROUPS, GROUPS, CONNECTIONS}
)


@dataclass(frozen=True, slots=True)
class Answer(Generic[T]):
    """A value gathered from the workers, with which of them answered.

    `workers_missing` names the workers expected to answer (from the worker registry and
    the `WORKERS` setting) that did not within `QUERY_TIMEOUT`: their connections are not in
    `value`. `complete` is True when none is missing; on one process it always is.
    """

    value: T
    workers_replied: tuple[str, ...] = ()
    workers_missing: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        """Whether every expected worker answered (the value is then exact)."""
        return not self.workers_missing

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (management command, staff view, APIs)."""
        return {
            "value": self.value,
            "complete": self.complete,
            "workers_replied": list(self.workers_replied),
            "workers_missing": list(self.workers_missing),
        }


def merge(kind: str, parts: Iterable[Any], limit: int | None = None) -> Any:
    """Combine the workers' parts of one query of `kind` into its value.

    Parts of the wrong shape (a worker running another version) are skipped rather than
    failing the whole answer.
    """
    if kind in (COUNT, USER_COUNT, GROUP_COUNT):
        return sum(p for p in parts if isinstance(p, int) and not isinstance(p, bool))
    if kind in (USER_CONNECTIONS, CONNECTIONS):
        merged: list[Any] = []
        for part in parts:
            if isinstance(part, list):
                merged.extend(part)
        if kind == USER_CONNECTIONS:
            merged.sort()
        return merged if limit is None else merged[:limit]
    if kind == GROUPS:
        totals: dict[str, int] = {}
        for part in parts:
            if isinstance(part, Mapping):
                for name, count in part.items():
                    if isinstance(name, str) and isinstance(count, int):
                        totals[name] = totals.get(name, 0) + count
        return dict(sorted(totals.items()))
    if kind == CONNECTION_GROUPS:
        for part in parts:
            if isinstance(part, list):
                return sorted(part)
        return None
    raise ValueError(f"Unknown query kind {kind!r}; expected one of {', '.join(sorted(KINDS))}.")


def expected_workers(registered: Iterable[str], configured: Iterable[str]) -> set[str]:
    """The workers that should answer: those registered recently plus configured ones."""
    return {name.rstrip("/") for name in (*registered, *configured) if name}


def missing_workers(expected: Iterable[str], replied: Iterable[str]) -> tuple[str, ...]:
    """Expected workers that did not reply, sorted."""
    return tuple(sorted(set(expected) - set(replied)))
