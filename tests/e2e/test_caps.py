"""Per-connection caps and hostile arguments, on a real Daphne.

A hostile connection (raw JSON records) drives each cap of `CapsHub` past its limit: only
the excess calls fail, with an error Completion naming the setting, and the connection stays
open and keeps working. Meanwhile a well-behaved pair on the official client (Node) gets its
echo answered and receives a broadcast. The server log has no traceback for any of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.e2e.conftest import run_node
from tests.servers import Server, daphne

pytestmark = pytest.mark.e2e

RS = "\x1e"
HANDSHAKE = '{"protocol":"json","version":1}' + RS
HUGE = "1" + "0" * 400  # a 401-digit integer literal


@pytest.fixture(scope="module")
def caps_server(artifacts: Path, test_db: str) -> Iterator[Server]:
    with daphne(
        "tests.asgi:application",
        "tests.settings",
        artifacts,
        {"SIGNALR_TEST_DB": test_db},
        name="caps",
    ) as server:
        yield server


class Hostile:
    """A raw JSON-protocol connection that keeps every message it receives."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.received: list[dict[str, Any]] = []

    @classmethod
    async def open(cls, server: Server, query: str = "") -> Hostile:
        ws = await websockets.connect(
            f"ws://127.0.0.1:{server.port}/hubs/caps{query}", ping_interval=None, max_size=None
        )
        await ws.send(HANDSHAKE)
        assert await asyncio.wait_for(ws.recv(), 30) == "{}" + RS
        return cls(ws)

    async def send(self, *records: str) -> None:
        await self.ws.send("".join(record + RS for record in records))

    async def _read(self, timeout: float) -> None:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        text = frame if isinstance(frame, str) else frame.decode()
        self.received.extend(json.loads(part) for part in text.split(RS) if part)

    async def wait_for(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        """The first received message matching `predicate` (waits for it to arrive)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            for message in self.received:
                if predicate(message):
                    return message
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise AssertionError(f"not received; have {self.received[-10:]}")
            await self._read(remaining)

    async def completion(self, invocation_id: str) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: m.get("type") == 3 and m.get("invocationId") == invocation_id
        )

    def count(self, predicate: Any) -> int:
        return sum(1 for m in self.received if predicate(m))

    async def still_works(self, tag: str) -> None:
        """The connection is open and answers an echo."""
        await self.send(invocation(f"echo-{tag}", "Echo", tag))
        assert (await self.completion(f"echo-{tag}"))["result"] == tag

    async def close(self) -> None:
        await self.ws.close()


def invocation(invocation_id: str, target: str, *args: Any, streams: list[str] = ()) -> str:  # type: ignore[assignment]
    body: dict[str, Any] = {
        "type": 1,
        "invocationId": invocation_id,
        "target": target,
        "arguments": list(args),
    }
    if streams:
        body["streamIds"] = list(streams)
    return json.dumps(body)


def cap_error(prefix: str, what: str, limit: int, setting: str) -> str:
    return f"{prefix} LimitExceededError: {what} (limit {limit}, setting {setting})."


def bind_prefix(target: str) -> str:
    return f"Failed to invoke '{target}' due to an error on the server."


def invoke_prefix(target: str) -> str:
    return f"An unexpected error occurred invoking '{target}' on the server."


async def control_works(server: Server) -> None:
    """The official client, on the same hub and worker: echo answered, broadcast received."""
    result = await asyncio.to_thread(run_node, "run.mjs", "capsControl", server.url)
    assert result["echo"] == "control echo"
    assert ["all", "control broadcast"] in result["a"]
    assert ["all", "control broadcast"] in result["b"]
    assert result["streamed"] == [0, 1, 2]


def assert_no_traceback(server: Server) -> None:
    log = server.output()
    assert "Traceback" not in log, log[-4000:]
    assert "ERROR" not in log, log[-4000:]


async def test_server_to_client_streams_over_the_cap(caps_server: Server) -> None:
    hostile = await Hostile.open(caps_server)
    try:
        await hostile.send(
            *(
                json.dumps({"type": 4, "invocationId": f"s{i}", "target": "Hold", "arguments": []})
                for i in range(8)
            )
        )
        for i in range(5, 8):
            refused = await hostile.completion(f"s{i}")
            assert refused["error"] == cap_error(
                bind_prefix("Hold"),
                "Too many server-to-client streams running on this connection",
                5,
                "MAXIMUM_PARALLEL_STREAMS_PER_CLIENT",
            )
        for i in range(5):  # the five within the cap are running
            await hostile.wait_for(
                lambda m, i=i: m.get("type") == 2 and m["invocationId"] == f"s{i}"
            )
        await control_works(caps_server)
        await hostile.still_works("streams")
        # Ending one stream makes room for another.
        await hostile.send(json.dumps({"type": 5, "invocationId": "s0"}))
        await hostile.completion("s0")
        await hostile.send(
            json.dumps({"type": 4, "invocationId": "s9", "target": "Hold", "arguments": []})
        )
        await hostile.wait_for(lambda m: m.get("type") == 2 and m["invocationId"] == "s9")
        assert hostile.count(lambda m: m.get("type") == 7) == 0
    finally:
        await hostile.close()
    assert_no_traceback(caps_server)


async def test_upload_streams_over_the_cap(caps_server: Server) -> None:
    hostile = await Hostile.open(caps_server)
    try:
        await hostile.send(
            *(invocation(f"u{i}", "Upload", f"p{i}:", streams=[f"st{i}"]) for i in range(5))
        )
        for i in (3, 4):
            refused = await hostile.completion(f"u{i}")
            assert refused["error"] == cap_error(
                bind_prefix("Upload"),
                "Too many client-to-server streams open on this connection",
                3,
                "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT",
            )
        await control_works(caps_server)
        # The open uploads still work: items, then their Completion.
        await hostile.send(
            json.dumps({"type": 2, "invocationId": "st0", "item": "a"}),
            json.dumps({"type": 2, "invocationId": "st0", "item": "b"}),
            json.dumps({"type": 3, "invocationId": "st0"}),
        )
        assert (await hostile.completion("u0"))["result"] == "p0:a,b"
        await hostile.send(invocation("u5", "Upload", "p5:", streams=["st5"]))
        await hostile.send(json.dumps({"type": 3, "invocationId": "st5"}))
        assert (await hostile.completion("u5"))["result"] == "p5:"
        await hostile.still_works("uploads")
    finally:
        await hostile.close()
    assert_no_traceback(caps_server)


async def test_pending_client_results_over_the_cap_then_disconnect(caps_server: Server) -> None:
    hostile = await Hostile.open(caps_server)
    try:
        await hostile.send(*(invocation(f"a{i}", "AskForever") for i in range(7)))
        for i in (5, 6):
            refused = await hostile.completion(f"a{i}")
            assert refused["error"] == cap_error(
                invoke_prefix("AskForever"),
                "Too many client results pending on this connection",
                5,
                "MAXIMUM_PENDING_CLIENT_RESULTS_PER_CLIENT",
            )
        asked = lambda m: m.get("type") == 1 and m.get("target") == "NeverAnswered"  # noqa: E731
        await hostile.wait_for(asked)
        while hostile.count(asked) < 5:
            await hostile._read(30)
        assert hostile.count(asked) == 5
        await control_works(caps_server)
        await hostile.still_works("results")
    finally:
        await hostile.close()
    # The five waiting calls fail quietly: one warning line, no traceback.
    line = "ended with 5 client result(s) pending"
    for _ in range(600):
        if line in caps_server.output():
            break
        await asyncio.sleep(0.05)
    # (The test settings log through two handlers; count the timestamped copies.)
    lines = [x for x in caps_server.output().splitlines() if line in x and "WARNING" in x]
    assert len(lines) == 1
    await control_works(caps_server)
    assert_no_traceback(caps_server)


async def test_groups_over_the_cap_and_long_names(caps_server: Server) -> None:
    hostile = await Hostile.open(caps_server)
    try:
        await hostile.send(*(invocation(f"j{i}", "Join", f"g{i}") for i in range(6)))
        await hostile.send(invocation("long", "Join", "x" * 17))
        for i in range(5):
            assert "error" not in await hostile.completion(f"j{i}")
        assert (await hostile.completion("j5"))["error"] == cap_error(
            invoke_prefix("Join"),
            "The connection is in too many groups",
            5,
            "MAXIMUM_GROUPS_PER_CLIENT",
        )
        assert (await hostile.completion("long"))["error"] == cap_error(
            invoke_prefix("Join"),
            "The group name is too long",
            16,
            "MAXIMUM_GROUP_NAME_LENGTH",
        )
        await control_works(caps_server)
        # Still a member of its five groups, and can swap one for another.
        await hostile.send(invocation("send", "SendToGroup", "g4", "to g4"))
        await hostile.wait_for(lambda m: m.get("arguments") == ["group", "to g4"])
        await hostile.send(invocation("leave", "Leave", "g0"), invocation("j6", "Join", "g6"))
        assert "error" not in await hostile.completion("j6")
        await hostile.still_works("groups")
    finally:
        await hostile.close()
    assert_no_traceback(caps_server)


async def test_user_id_over_the_cap_refuses_the_handshake(caps_server: Server) -> None:
    url = f"ws://127.0.0.1:{caps_server.port}/hubs/caps?user={'u' * 33}"
    async with websockets.connect(url, ping_interval=None) as ws:
        await ws.send(HANDSHAKE)
        answer = json.loads((await asyncio.wait_for(ws.recv(), 30)).rstrip(RS))
    assert answer == {
        "error": "The user id is longer than 32 characters "
        "(limit 32, setting MAXIMUM_USER_ID_LENGTH)."
    }
    hostile = await Hostile.open(caps_server, f"?user={'u' * 32}")
    try:
        await hostile.send(invocation("who", "UserId"))
        assert (await hostile.completion("who"))["result"] == "u" * 32
    finally:
        await hostile.close()
    await control_works(caps_server)
    assert_no_traceback(caps_server)


async def test_arguments_that_fit_no_type_fail_only_that_invocation(caps_server: Server) -> None:
    hostile = await Hostile.open(caps_server)
    try:
        raw = [
            ("h1", "Half", f"[{HUGE}]"),
            ("h2", "Half", "[[1,2]]"),
            ("p1", "Pick", '[["a"]]'),
            ("p2", "Pick", f"[{HUGE}]"),
            ("u1", "Unique", "[[[1],[2]]]"),
            ("u2", "Unique", f"[{HUGE}]"),
            ("n1", "Nested", f'[[{{"a":[1.5,{HUGE}]}}]]'),
        ]
        await hostile.send(
            *(
                f'{{"type":1,"invocationId":"{iid}","target":"{target}","arguments":{args}}}'
                for iid, target, args in raw
            )
        )
        for iid, target, _ in raw:
            assert (await hostile.completion(iid))["error"] == bind_prefix(target)
        await hostile.send(invocation("ok", "Half", 3))
        assert (await hostile.completion("ok"))["result"] == 1.5
        await hostile.still_works("binding")
        assert hostile.count(lambda m: m.get("type") == 7) == 0
    finally:
        await hostile.close()
    await control_works(caps_server)
    log = caps_server.output()
    assert "do not bind" in log
    assert_no_traceback(caps_server)
