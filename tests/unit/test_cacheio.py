"""The package's cache calls run on their own threads, never on Django's sync thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from asgiref.sync import sync_to_async

from signalr_django.core.cacheio import offload


class StalledCache:
    """A cache whose `set` blocks until released (a partitioned Redis)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.threads: list[str] = []
        self.prefix = "k:"

    def set(self, key: str, value: Any, timeout: Any = None) -> None:
        self.threads.append(threading.current_thread().name)
        self.release.wait(10)

    def get(self, key: str, default: Any = None) -> Any:
        self.threads.append(threading.current_thread().name)
        return "value"


async def test_a_stalled_cache_call_does_not_hold_djangos_sync_thread() -> None:
    cache = StalledCache()
    stalled = asyncio.ensure_future(offload(cache).aset("k", 1))
    await asyncio.sleep(0.05)
    # Django's sync thread (thread-sensitive sync_to_async) is free for requests meanwhile.
    answered = await asyncio.wait_for(sync_to_async(lambda: "view answered")(), timeout=5)
    assert answered == "view answered"
    with_timeout = asyncio.wait_for(asyncio.shield(stalled), timeout=0.01)
    try:
        await with_timeout
    except TimeoutError:
        pass
    cache.release.set()
    await stalled
    assert await offload(cache).aget("k") == "value"
    assert all(name.startswith("signalr-cache") for name in cache.threads)
    assert offload(cache).prefix == "k:"  # other attributes pass through
