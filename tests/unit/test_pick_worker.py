"""The WSGI site's negotiate redirect spreads clients over the workers' load reports.

Reports arrive every LOAD_REPORT_INTERVAL; every negotiate in between (a reconnect burst
after a restart, a user opening several windows) must not go to the same worker.
"""

from __future__ import annotations

from typing import Any

import pytest

from signalr_django.core import load
from signalr_django.core.load import load_key, pick_worker

A, B = "http://a:8001", "http://b:8002"


@pytest.fixture(autouse=True)
def _fresh() -> None:
    load._handed.clear()


def _loads(a: int, b: int, at: float = 1.0, limit: int | None = None) -> dict[str, Any]:
    return {
        load_key(A): {"connections": a, "limit": limit, "at": at},
        load_key(B): {"connections": b, "limit": limit, "at": at},
    }


def test_a_burst_between_two_reports_is_spread() -> None:
    loads = _loads(10, 10)
    picks = [pick_worker([A, B], loads) for _ in range(6)]
    assert picks.count(A) == 3 and picks.count(B) == 3
    # Each pair of picks took one of each: the counts never drift apart by more than one.
    for i in range(0, 6, 2):
        assert {picks[i], picks[i + 1]} == {A, B}


def test_the_least_loaded_worker_takes_new_clients_until_it_catches_up() -> None:
    loads = _loads(10, 7)
    picks = [pick_worker([A, B], loads) for _ in range(3)]
    assert picks == [B, B, B]
    assert pick_worker([A, B], loads) in (A, B)  # now level: either


def test_a_new_report_replaces_what_was_handed_out() -> None:
    for _ in range(5):
        pick_worker([A, B], _loads(0, 100))
    assert pick_worker([A, B], _loads(0, 100, at=2.0)) == A  # A's count restarts at 0


def test_limits_count_what_was_handed_out() -> None:
    loads = _loads(8, 9, limit=10)
    picks = [pick_worker([A, B], loads) for _ in range(3)]
    assert picks[0] == A and sorted(picks) == [A, A, B]  # then level: in either order
    assert pick_worker([A, B], loads) is None  # both at their limit until they report


def test_workers_without_a_report_are_not_offered() -> None:
    assert pick_worker([A, B], {load_key(B): {"connections": 50, "limit": None, "at": 1}}) == B
    assert pick_worker([A, B], {}) is None
