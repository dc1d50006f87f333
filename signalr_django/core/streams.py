"""Client-to-server streams: the async iterator a hub method receives for a stream parameter.

The official clients send a stream as StreamItem messages tagged with a stream id and end it
with a Completion. Items are queued up to `STREAM_BUFFER_CAPACITY`; when the hub method
reads slower than the client sends, the connection's read loop waits, which is the
backpressure ASP.NET Core applies too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from ..exceptions import BindingError, HubException

_WAKE = object()


class UploadStream(AsyncIterator[Any]):
    """Items the client streams to a hub method parameter."""

    __slots__ = ("_convert", "_end", "_queue")

    def __init__(self, capacity: int, convert: Callable[[Any], Any] | None = None) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(1, capacity))
        self._convert = convert
        self._end: BaseException | None = None

    def __aiter__(self) -> UploadStream:
        return self

    async def __anext__(self) -> Any:
        while True:
            if self._end is not None and self._queue.empty():
                raise self._end
            item = await self._queue.get()
            if item is not _WAKE:
                return item

    async def put(self, item: Any) -> None:
        """Queue one item (waits while the buffer is full)."""
        if self._end is not None:
            return
        if self._convert is not None:
            try:
                item = self._convert(item)
            except BindingError as exc:
                self.complete(f"Error binding stream item: {exc}")
                return
        await self._queue.put(item)

    def complete(self, error: str | None = None) -> None:
        """End the stream after the queued items; with `error` the reader raises HubException."""
        if self._end is not None:
            return
        self._end = StopAsyncIteration() if error is None else HubException(error)
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(_WAKE)  # wakes a reader waiting on an empty queue

    @property
    def finished(self) -> bool:
        """True once the client ended the stream."""
        return self._end is not None
