"""A second client implementation (pysignalr from PyPI) agrees with the server."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from pysignalr.client import SignalRClient
from pysignalr.messages import CompletionMessage

from tests.servers import Server

pytestmark = pytest.mark.e2e


async def test_pysignalr_invokes_streams_and_receives(server: Server) -> None:
    """Invocation results, errors, a server stream, a client stream and a broadcast."""
    client = SignalRClient(f"{server.url}/hubs/test")
    results: dict[str, Any] = {}
    streamed: list[Any] = []
    done = asyncio.Event()
    received: list[list[Any]] = []

    async def on_receive(args: list[Any]) -> None:
        received.append(args)

    client.on("Receive", on_receive)

    async def on_error(message: CompletionMessage) -> None:
        results["error"] = message.error

    client.on_error(on_error)

    async def on_open() -> None:
        async def result_of(name: str) -> Any:
            async def callback(message: CompletionMessage) -> None:
                results[name] = message.error or message.result

            return callback

        await client.send("Echo", ["hello"], await result_of("echo"))
        await client.send("Add", [20, 22], await result_of("add"))
        await client.send("Nope", [], await result_of("nope"))

        async def on_next(items: Any) -> None:
            streamed.append(items)

        async def on_complete(message: Any) -> None:
            results["stream_done"] = True

        await client.stream("Counter", [3, 0.001], on_next=on_next, on_complete=on_complete)
        async with client.client_stream("UploadSum") as stream:
            for n in (1, 2, 3):
                await stream.send(n)
        await client.send("SendToCaller", ["pushed"])

    client.on_open(on_open)
    task = asyncio.create_task(client.run())
    try:
        for _ in range(200):
            if len(results) >= 5 and received and len(streamed) >= 3:
                done.set()
                break
            await asyncio.sleep(0.025)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    assert done.is_set(), (results, streamed, received)
    assert results["echo"] == "hello"
    assert results["add"] == 42
    assert results["error"] == (
        "Failed to invoke 'Nope' due to an error on the server. "
        "HubException: Method does not exist."
    )
    assert [item if not isinstance(item, list) else item[0] for item in streamed] == [0, 1, 2]
    assert received[0] == ["caller", "pushed"]
