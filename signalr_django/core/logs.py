"""Quiet logging of expected failures: one WARNING line each, rate-limited per worker.

Some failures are the client's doing and say nothing about the server's health: arguments
that do not bind, a per-connection cap reached, a client that disconnected with client
results pending, a slow reader closed. A hostile client can cause them thousands of times a
second, so they must neither write tracebacks nor flood the log: each *kind* may write at
most `LIMIT` lines per `INTERVAL` seconds in this process; the rest are counted, and the
first line of the kind after the interval ends says how many were left out, e.g.

    Binding failed for 'Add' on connection abc (412 more 'binding' warnings suppressed)

Nothing is logged with a traceback here: unexpected hub-method exceptions go through
`logger.exception` in the dispatcher, where a developer needs the stack.

No secret may reach a log line: `safe_id` turns a connection id into its loggable part
(negotiate version 0 clients know their connection by the connection token itself, which
is a credential; its first dot-separated part is the plain id and is not).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LIMIT = 10
INTERVAL = 60.0

logger = logging.getLogger("signalr_django")


@dataclass(slots=True)
class _Window:
    start: float
    written: int = 0
    suppressed: int = 0


class RateLimitedLog:
    """At most `limit` lines per `interval` seconds for each kind; counts the rest."""

    def __init__(
        self,
        limit: int = LIMIT,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.interval = interval
        self.clock = clock
        self._windows: dict[str, _Window] = {}

    def warn(
        self, kind: str, message: str, *args: Any, target: logging.Logger | None = None
    ) -> bool:
        """Log `message % args` at WARNING unless `kind` used up its lines; True if written."""
        return self.log(logging.WARNING, kind, message, *args, target=target)

    def log(
        self,
        level: int,
        kind: str,
        message: str,
        *args: Any,
        target: logging.Logger | None = None,
    ) -> bool:
        """Log `message % args` at `level` unless `kind` used up its lines; True if written."""
        now = self.clock()
        window = self._windows.get(kind)
        suppressed = 0
        if window is None or now - window.start >= self.interval:
            if window is not None:
                suppressed = window.suppressed
            window = self._windows[kind] = _Window(now)
        if window.written >= self.limit:
            window.suppressed += 1
            return False
        window.written += 1
        log = target or logger
        if suppressed:
            word = "warnings" if level == logging.WARNING else "lines"
            log.log(level, f"{message} (%d more %r {word} suppressed)", *args, suppressed, kind)
        else:
            log.log(level, message, *args)
        return True

    def reset(self) -> None:
        """Forget every window (tests)."""
        self._windows.clear()


_default = RateLimitedLog()


def warn_limited(kind: str, message: str, *args: Any, target: logging.Logger | None = None) -> bool:
    """Log one WARNING line (no traceback) for an expected failure, rate-limited per kind.

    `kind` groups the lines that share a budget ("binding", "cap", "client-gone",
    "slow-reader", ...); `message` and `args` are formatted as `logging` does, lazily.
    Returns whether the line was written.
    """
    return _default.warn(kind, message, *args, target=target)


def safe_id(connection_id: str) -> str:
    """The part of a connection id that may be logged or shown to others.

    Negotiate version 0 hands the whole connection token to the client as its id; the
    token is `<id>.<issued>.<flags>.<owner>.<signature>` and only `<id>` is not a secret.
    Ids of newer clients contain no dot and come back unchanged.
    """
    return connection_id.partition(".")[0]
