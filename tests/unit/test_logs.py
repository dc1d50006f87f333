"""The rate-limited warning log: budget per kind, summary of what was left out, no secrets."""

from __future__ import annotations

import logging

import pytest

from signalr_django.core import logs
from signalr_django.core.logs import RateLimitedLog, safe_id


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_each_kind_writes_at_most_limit_lines_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = RateLimitedLog(limit=3, interval=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="signalr_django"):
        written = [log.warn("binding", "bad call %d", i) for i in range(10)]
        assert written == [True] * 3 + [False] * 7
        # Another kind has its own budget.
        assert log.warn("cap", "cap reached")
    assert lines(caplog) == ["bad call 0", "bad call 1", "bad call 2", "cap reached"]
    assert all(r.levelno == logging.WARNING and r.exc_info is None for r in caplog.records)


def test_after_the_interval_the_next_line_counts_the_suppressed_ones(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    log = RateLimitedLog(limit=2, interval=60, clock=clock)
    with caplog.at_level(logging.WARNING, logger="signalr_django"):
        for i in range(7):
            log.warn("binding", "bad call %d", i)
        clock.now += 59.9
        assert not log.warn("binding", "still inside the window")
        clock.now += 0.1
        assert log.warn("binding", "bad call %d", 99)
        assert log.warn("binding", "bad call %d", 100)
        assert not log.warn("binding", "over again")
        clock.now += 120
        log.warn("binding", "later")
        clock.now += 120
        log.warn("binding", "quiet period")
    assert lines(caplog) == [
        "bad call 0",
        "bad call 1",
        "bad call 99 (6 more 'binding' warnings suppressed)",
        "bad call 100",
        "later (1 more 'binding' warnings suppressed)",
        "quiet period",
    ]


def test_a_given_logger_is_used(caplog: pytest.LogCaptureFixture) -> None:
    log = RateLimitedLog(clock=FakeClock())
    target = logging.getLogger("signalr_django.dispatch.dispatcher")
    with caplog.at_level(logging.WARNING, logger="signalr_django"):
        log.warn("cap", "over %s", "limit", target=target)
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("signalr_django.dispatch.dispatcher", "over limit")
    ]


def test_module_function_uses_the_process_wide_budget(caplog: pytest.LogCaptureFixture) -> None:
    logs._default.reset()
    try:
        with caplog.at_level(logging.WARNING, logger="signalr_django"):
            results = [logs.warn_limited("test-kind", "line %d", i) for i in range(logs.LIMIT + 5)]
        assert results.count(True) == logs.LIMIT
        assert len(caplog.records) == logs.LIMIT
    finally:
        logs._default.reset()


def test_safe_id_drops_the_secret_parts_of_a_version_0_token() -> None:
    assert safe_id("AbC-d_123") == "AbC-d_123"
    assert safe_id("AbC-d_123.6650a1.n0.b3duZXI.c2lnbmF0dXJl") == "AbC-d_123"
