"""The package's own cache calls run on threads of their own, not on Django's sync thread.

Django's async cache methods (`aget`, `aset`, ...) run the sync method through asgiref's
thread-sensitive executor: the one thread that also serves every sync view and every
`database_sync_to_async` call of the process (session authentication included). A cache that
stalls (Redis partitioned, a proxy hanging) would hold that thread for the cache client's
socket timeout, and every request of the worker, cache or not, would wait behind it.

The package touches the cache in the background and at connection start: load reports, the
worker registry, presence counters and connection-token claims. Those calls go through
`offload(cache)`, whose async methods run the sync ones on a small pool of threads used for
nothing else. A caller that gives up (`asyncio.wait_for`) leaves at once; a call not started
yet is dropped, and one already blocked in the client ends with its socket timeout, taking
one of these threads, never a request's.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Enough for a report, a registry write and a few claims in flight at once; more would only
# queue up behind a stalled cache.
THREADS = 4

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="signalr-cache")
    return _executor


async def run(func: Any, /, *args: Any, **kwargs: Any) -> Any:
    """`func(*args, **kwargs)` on the cache threads, awaited from the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(func, *args, **kwargs))


class OffloadedCache:
    """A Django cache whose `a*` methods run the sync ones on the cache threads."""

    __slots__ = ("_cache",)

    def __init__(self, cache: Any) -> None:
        self._cache = cache

    def __getattr__(self, name: str) -> Any:
        sync = getattr(self._cache, name[1:], None) if name.startswith("a") else None
        if sync is None or not callable(sync):
            return getattr(self._cache, name)
        return functools.partial(run, sync)


def offload(cache: Any) -> Any:
    """`cache` with its async methods moved off Django's sync thread (see the module doc)."""
    return OffloadedCache(cache)
