"""A client-to-server stream a test feeds item by item."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

_END: Any = object()


class ClientStream:
    """An upload stream the test writes to while the hub method reads it.

    Pass it as an argument of `HubCommunicator.invoke`, `send` or `stream` (any async
    iterable works; this one lets a test interleave items with assertions):

        upload = ClientStream()
        call = asyncio.create_task(comm.invoke("Total", upload))
        await upload.send(1)
        await upload.complete()
        assert await call == 1

    `complete(error)` ends the stream with an error, as the official clients do when the
    subject they upload from fails: the hub method's iteration raises.
    """

    __slots__ = ("_closed", "_queue")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = False

    async def send(self, item: Any) -> None:
        """Send one item to the hub method."""
        if self._closed:
            raise RuntimeError("The stream was completed; no more items can be sent.")
        await self._queue.put(item)

    async def complete(self, error: str | None = None) -> None:
        """End the stream, with an error text when `error` is given."""
        if self._closed:
            return
        self._closed = True
        await self._queue.put(_END if error is None else _Failed(error))

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._items()

    async def _items(self) -> AsyncIterator[Any]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise UploadFailed(item.error)
            yield item


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


class UploadFailed(Exception):
    """A `ClientStream` was completed with an error; its text goes to the server."""
