"""How busy this worker is: the connection count, the per-worker limit, and load reports.

A process runs out of file descriptors long before it runs out of CPU when it holds
persistent connections; a per-worker limit (`MAX_CONNECTIONS`) makes it refuse new ones
with a clear 503 and a Retry-After instead. Workers that know their public URL
(`WORKER_URL`) publish their count every `LOAD_REPORT_INTERVAL` seconds in Django's cache,
where the WSGI site's negotiate redirect reads them to send clients to the least loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from .cacheio import offload

logger = logging.getLogger(__name__)

LOAD_KEY = "signalr:load:{url}"


def connection_count() -> int:
    """Connections held by this process (hubs, connection handlers, HTTP ones mid-handshake)."""
    from ..lifetime.manager import _managers
    from ..raw.handler import connection_count as raw_count
    from ..transports.http_connection import _managers as http_managers

    count = sum(len(m.connections) for m in _managers.values()) + raw_count()
    for manager in list(http_managers.values()):
        count += sum(1 for c in manager.connections.values() if c.session.connection is None)
    return count


def over_limit() -> bool:
    """Whether a new connection would exceed MAX_CONNECTIONS."""
    from ..conf import global_options

    limit = global_options().MAX_CONNECTIONS
    return limit is not None and limit > 0 and connection_count() >= limit


def load_key(url: str) -> str:
    """The cache key a worker reports under."""
    return LOAD_KEY.format(url=url.rstrip("/"))


async def report_once() -> None:
    """Publish this worker's count (no-op without WORKER_URL)."""
    from django.core.cache import caches

    from ..conf import global_options

    options = global_options()
    if not options.WORKER_URL:
        return
    value = {
        "connections": connection_count(),
        "limit": options.MAX_CONNECTIONS,
        "at": time.time(),
    }
    cache = offload(caches[options.LOAD_CACHE])
    await cache.aset(load_key(options.WORKER_URL), value, timeout=options.LOAD_REPORT_INTERVAL * 3)


async def withdraw() -> None:
    """Stop being offered to new clients (shutdown)."""
    from django.core.cache import caches

    from ..conf import global_options

    options = global_options()
    if options.WORKER_URL:
        with contextlib.suppress(Exception):
            await offload(caches[options.LOAD_CACHE]).adelete(load_key(options.WORKER_URL))


async def report_forever() -> None:
    """Report every LOAD_REPORT_INTERVAL seconds until the process stops."""
    from ..conf import global_options

    while True:
        try:
            await report_once()
        except Exception:
            logger.warning("Reporting the worker load failed", exc_info=True)
        await asyncio.sleep(global_options().LOAD_REPORT_INTERVAL)


_task: asyncio.Task[None] | None = None


def start() -> None:
    """Start reporting on the running event loop (idempotent; no-op without WORKER_URL)."""
    global _task
    from ..conf import global_options

    if not global_options().WORKER_URL or (_task is not None and not _task.done()):
        return
    _task = asyncio.get_event_loop().create_task(report_forever())


async def stop() -> None:
    """Stop reporting and stop being offered to new clients (the server is stopping)."""
    global _task
    task, _task = _task, None
    if task is not None:
        task.cancel()
        await asyncio.wait({task})  # a report in flight must not land after the withdrawal
    await withdraw()


def install() -> None:
    """Start reporting once Daphne's reactor runs (only when WORKER_URL is set).

    Other ASGI servers start it with the lifespan protocol (`signalr_django.lifespan`).
    """
    from ..conf import global_options

    if not global_options().WORKER_URL:
        return
    from ..server.daphne import call_when_running

    call_when_running(start)


# Redirects this process has handed each worker since the worker's last report: (the
# report's time, how many). Reports come every LOAD_REPORT_INTERVAL; without this, every
# negotiate in between (a burst of reconnects after a restart, several browser windows)
# would be sent to the same least loaded worker.
_handed: dict[str, tuple[Any, int]] = {}


def pick_worker(workers: list[str], loads: dict[str, Any]) -> str | None:
    """The least loaded live worker under its limit (None when none is available).

    A worker's load is its last report plus the redirects this process has handed it since
    that report; equally loaded workers are chosen at random, so that processes with the
    same reports (gunicorn's workers) do not all pick the same one.
    """
    best: list[str] = []
    best_score = 0.0
    for url in workers:
        load = loads.get(load_key(url))
        if not isinstance(load, dict):
            continue  # no recent report: down, or not started yet
        at = load.get("at")
        handed = _handed.get(url)
        count = int(load.get("connections", 0)) + (handed[1] if handed and handed[0] == at else 0)
        limit = load.get("limit")
        if limit and count >= limit:
            continue
        score = count / limit if limit else float(count)
        if not best or score < best_score:
            best, best_score = [url], score
        elif score == best_score:
            best.append(url)
    if not best:
        return None
    chosen = best[0] if len(best) == 1 else random.choice(best)
    at = loads[load_key(chosen)].get("at")
    handed = _handed.get(chosen)
    _handed[chosen] = (at, (handed[1] if handed and handed[0] == at else 0) + 1)
    return chosen
