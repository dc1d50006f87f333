"""The worker registry: which server processes exist, so a query knows whom to wait for.

Every server process with a backplane writes an entry about itself (its name, host, pid,
connection counts) in the cache named by `LOAD_CACHE` every `LOAD_REPORT_INTERVAL`
seconds, and keeps its name in one roster key. A query waits for the workers of the
roster whose entry still exists, plus the `WORKERS` setting's, and names those that did
not answer as missing. An entry lives `FORGET_AFTER` seconds: a worker that is killed (no
shutdown) is reported missing for that long, then forgotten; a worker that shuts down
withdraws at once.

The roster is rewritten only when a worker joins or finds dead names in it; two workers
joining at the same instant may overwrite each other's name, and each re-adds its own on
its next report, so the roster converges within one interval. Names are `WORKER_URL`
when set (the URL clients are redirected to), else `host:pid`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
from typing import Any

logger = logging.getLogger(__name__)

ROSTER_KEY = "signalr:workers"
ENTRY_KEY = "signalr:worker:{digest}"
# How long a worker that stopped reporting stays in the registry (reported missing).
FORGET_AFTER = 60.0

_task: asyncio.Task[None] | None = None
_started_at = time.time()


def worker_name() -> str:
    """This process's name in answers and in the registry."""
    from ..conf import global_options

    url = global_options().WORKER_URL
    if url:
        return url.rstrip("/")
    return f"{socket.gethostname()}:{os.getpid()}"


def entry_key(name: str) -> str:
    """The cache key of one worker's entry (a digest: names are URLs)."""
    return ENTRY_KEY.format(digest=hashlib.blake2b(name.encode(), digest_size=12).hexdigest())


def is_serving() -> bool:
    """Whether this process is a registered worker answering queries."""
    return _task is not None and not _task.done()


def _cache() -> Any:
    from django.core.cache import caches

    from ..conf import global_options

    return caches[global_options().LOAD_CACHE]


async def report_once() -> None:
    """Write this worker's entry, and put its name on the roster when it is not there."""
    from .gather import local_status

    cache = _cache()
    name = worker_name()
    entry = {**local_status(), "at": time.time()}
    await cache.aset(entry_key(name), entry, timeout=FORGET_AFTER)
    roster: dict[str, float] = await cache.aget(ROSTER_KEY) or {}
    entries = await cache.aget_many([entry_key(n) for n in roster])
    alive = {n: t for n, t in roster.items() if entry_key(n) in entries or n == name}
    if name not in alive or len(alive) != len(roster):
        alive.setdefault(name, time.time())
        await cache.aset(ROSTER_KEY, alive, timeout=None)


async def entries() -> dict[str, dict[str, Any]]:
    """The registered workers' last entries, by name (empty when the cache fails)."""
    cache = _cache()
    try:
        roster: dict[str, float] = await cache.aget(ROSTER_KEY) or {}
        keys = {entry_key(n): n for n in roster}
        found = await cache.aget_many(list(keys))
    except Exception:
        logger.warning("Reading the worker registry failed", exc_info=True)
        return {}
    return {keys[k]: v for k, v in found.items() if isinstance(v, dict)}


async def _report_forever() -> None:
    from ..conf import global_options

    while True:
        try:
            await report_once()
        except Exception:
            logger.warning("Reporting to the worker registry failed", exc_info=True)
        await asyncio.sleep(global_options().LOAD_REPORT_INTERVAL)


async def _serve() -> None:
    """Answer queries from now on, then report forever."""
    from ..lifetime.default import default_backplane
    from .gather import serve

    backplane = default_backplane()
    if backplane is None:
        return
    try:
        await serve(backplane)
    except Exception:
        logger.warning("Subscribing to worker queries failed", exc_info=True)
    await _report_forever()


def start() -> None:
    """Register this server process and answer queries (idempotent; needs a backplane)."""
    global _task
    from ..lifetime.default import default_backplane

    if is_serving() or default_backplane() is None:
        return
    _task = asyncio.get_event_loop().create_task(_serve())


async def stop() -> None:
    """Leave the registry (the server is stopping): queries stop waiting for this worker."""
    global _task
    task, _task = _task, None
    if task is None:
        return
    task.cancel()
    await asyncio.wait({task})
    name = worker_name()
    try:
        cache = _cache()
        await cache.adelete(entry_key(name))
        roster: dict[str, float] = await cache.aget(ROSTER_KEY) or {}
        if roster.pop(name, None) is not None:
            await cache.aset(ROSTER_KEY, roster, timeout=None)
    except Exception:
        logger.warning("Leaving the worker registry failed", exc_info=True)


def install() -> None:
    """Start once Daphne's reactor runs (other servers: `signalr_django.lifespan`)."""
    from ..server.daphne import call_when_running

    call_when_running(start)


def started_at() -> float:
    """When this process loaded the package (Unix time), for uptime in the status."""
    return _started_at
