"""A TCP proxy a test controls, to make Redis unreachable without killing it.

Modes: `pass` relays bytes; `stall` keeps every socket open but moves nothing (a hung
network); `cut` closes every connection through it (a reset). It runs its own event loop in
a thread, so tests drive it with plain method calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any


class FaultProxy:
    """Listens on 127.0.0.1:`port` and forwards to `target_port`."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.mode = "pass"
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._resume = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._resume.set()
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self._resume.wait()  # stall: hold the bytes
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def _call(self, fn: Any) -> None:
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self._loop.call_soon_threadsafe(run)
        done.wait(5)

    def stall(self) -> None:
        """Keep connections open but move no bytes."""
        self.mode = "stall"
        self._call(self._resume.clear)

    def restore(self) -> None:
        """Relay again (held bytes flow on)."""
        self.mode = "pass"
        self._call(self._resume.set)

    def cut(self) -> None:
        """Close every connection now; later ones are accepted again."""

        def close_all() -> None:
            for writer in list(self._writers):
                writer.close()

        self._call(close_all)

    def close(self) -> None:
        """Stop the proxy."""
        self._call(self._resume.set)
        self._loop.call_soon_threadsafe(self._loop.stop)
