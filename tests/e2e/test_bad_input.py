"""The bad-input barrage: each case gets its defined answer, and nobody else notices.

Cases follow the catalogue in the project's reliability notes (H = handshake, M = hub
messages, I = invocations, T/A = transports and auth). After every case a healthy control
connection on the same Daphne must still answer within a second; at the end the server
holds no connection but the control one.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import websockets

from tests.servers import Server, daphne

# One event loop for the module: the control connection lives across all the cases.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

RS = "\x1e"
HANDSHAKE = '{"protocol":"json","version":1}' + RS
GENERIC = "An unexpected error occurred during connection handshake."
CLOSE = {"type": 7, "error": "Connection closed with an error.", "allowReconnect": True}


@pytest.fixture(scope="module")
def target(artifacts: Path, test_db: str) -> Iterator[Server]:
    with daphne(
        "tests.asgi:application",
        "tests.settings",
        artifacts,
        {"SIGNALR_TEST_DB": test_db},
        name="bad-input",
    ) as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def control(target: Server) -> AsyncIterator[Any]:
    ws = await websockets.connect(f"ws://127.0.0.1:{target.port}/hubs/test", ping_interval=None)
    await ws.send(HANDSHAKE)
    assert await ws.recv() == "{}" + RS
    yield ws
    await ws.close()


async def records(ws: Any, timeout: float = 5) -> list[dict[str, Any]]:
    frame = await asyncio.wait_for(ws.recv(), timeout)
    text = frame if isinstance(frame, str) else frame.decode()
    return [json.loads(part) for part in text.split(RS) if part]


async def next_message(ws: Any, timeout: float = 5) -> dict[str, Any]:
    while True:
        for message in await records(ws, timeout):
            if message.get("type") != 6:
                return message


async def assert_control_healthy(ws: Any) -> None:
    start = time.monotonic()
    await ws.send('{"type":1,"invocationId":"c","target":"Echo","arguments":["ok"]}' + RS)
    assert await next_message(ws) == {"type": 3, "invocationId": "c", "result": "ok"}
    assert time.monotonic() - start < 1.0


async def open_ws(server: Server, handshake: bool = True) -> Any:
    ws = await websockets.connect(
        f"ws://127.0.0.1:{server.port}/hubs/test", ping_interval=None, max_size=None
    )
    if handshake:
        await ws.send(HANDSHAKE)
        assert await ws.recv() == "{}" + RS
    return ws


async def closed_within(ws: Any, timeout: float = 5) -> None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), timeout)


HANDSHAKE_CASES = [
    ("H01 not JSON", "hello" + RS, GENERIC),
    (
        "H03 unknown protocol",
        '{"protocol":"foo","version":1}' + RS,
        "The protocol 'foo' is not supported.",
    ),
    (
        "H04 version too high",
        '{"protocol":"json","version":9001}' + RS,
        "The server does not support version 9001 of the 'json' protocol.",
    ),
    ("H06 no protocol", '{"version":1}' + RS, GENERIC),
    ("H06 no version", '{"protocol":"json"}' + RS, GENERIC),
    ("H06 version as text", '{"protocol":"json","version":"1"}' + RS, GENERIC),
    ("H06 protocol null", '{"protocol":null,"version":1}' + RS, GENERIC),
    ("H07 null", "null" + RS, GENERIC),
    ("H07 number", "42" + RS, GENERIC),
    ("H07 array", "[]" + RS, GENERIC),
    ("H08 hub message first", '{"type":1,"target":"Echo","arguments":[]}' + RS, GENERIC),
    ("H09 oversize handshake", " " * 40000, "Handshake was canceled."),
]


@pytest.mark.parametrize(
    ("case", "frame", "error"), HANDSHAKE_CASES, ids=[c[0] for c in HANDSHAKE_CASES]
)
async def test_handshake_cases(
    target: Server, control: Any, case: str, frame: str, error: str
) -> None:
    """Every bad handshake gets its error response, then the socket closes."""
    ws = await open_ws(target, handshake=False)
    await ws.send(frame)
    reply = await asyncio.wait_for(ws.recv(), 5)
    assert reply == json.dumps({"error": error}, separators=(",", ":")) + RS
    await closed_within(ws)
    await assert_control_healthy(control)


async def test_handshake_positive_cases(target: Server, control: Any) -> None:
    """H12 split over frames, H13 with an invocation in the same frame, H15 extra fields."""
    ws = await open_ws(target, handshake=False)
    for part in (
        '{"proto',
        'col":"json","ver',
        'sion":1,"extra":[1]}'
        + RS
        + '{"type":1,"invocationId":"1","target":"Echo","arguments":[7]}'
        + RS,
    ):
        await ws.send(part)
    assert await ws.recv() == "{}" + RS
    assert await next_message(ws) == {"type": 3, "invocationId": "1", "result": 7}
    await ws.close()
    await assert_control_healthy(control)


MESSAGE_CASES = [
    ("M01 truncated", '{"type":3,"invocationId":"42","result":true'),
    ("M01 brace", "{"),
    ("M02 null", "null"),
    ("M02 number", "42"),
    ("M02 array", "[42]"),
    ("M02 string", '"foo"'),
    ("M03 no type", "{}"),
    ("M04 type text", '{"type":"1"}'),
    ("M04 type bool", '{"type":true}'),
    ("M04 type float", '{"type":1.5}'),
    ("M06 type 1e308", '{"type":1e308}'),
    ("M06 type 5000 digits", '{"type":' + "9" * 5000 + "}"),
    ("M07 id number", '{"type":1,"invocationId":42,"target":"Echo","arguments":[]}'),
    ("M07 id object", '{"type":1,"invocationId":{},"target":"Echo","arguments":[]}'),
    ("M08 target number", '{"type":1,"invocationId":"1","target":42,"arguments":[]}'),
    ("M08 target missing", '{"type":1,"invocationId":"1","arguments":[]}'),
    ("M09 arguments object", '{"type":1,"invocationId":"1","target":"Echo","arguments":{}}'),
    ("M09 arguments missing", '{"type":1,"invocationId":"1","target":"Echo"}'),
    ("M10 headers list", '{"type":1,"target":"Echo","arguments":[],"headers":[]}'),
    ("M10 header number", '{"type":1,"target":"Echo","arguments":[],"headers":{"a":1}}'),
    ("M11 result and error", '{"type":3,"invocationId":"1","result":1,"error":"e"}'),
    ("M12 error number", '{"type":3,"invocationId":"1","error":5}'),
    ("M13 item missing", '{"type":2,"invocationId":"1"}'),
    ("M13 id missing", '{"type":2,"item":1}'),
    ("M16 NaN", '{"type":1,"invocationId":"1","target":"Echo","arguments":[NaN]}'),
    ("M16 Infinity", '{"type":1,"invocationId":"1","target":"Echo","arguments":[-Infinity]}'),
    (
        "M18 deep nesting",
        '{"type":1,"target":"Echo","arguments":' + "[" * 100000 + "]" * 100000 + "}",
    ),
    ("M19 raw separator in a string", '{"type":1,"target":"Echo","arguments":["a' + RS + 'b"]}'),
    ("M20 empty record", ""),
    ("H14 second handshake", '{"protocol":"json","version":1}'),
    ("I06 kwargs arguments", '{"type":1,"invocationId":"1","target":"Add","arguments":{"a":1}}'),
    (
        "I10 10 KB invocation id",
        '{"type":1,"invocationId":"' + "x" * 10000 + '","target":"Echo","arguments":[]}',
    ),
]


@pytest.mark.parametrize(("case", "record"), MESSAGE_CASES, ids=[c[0] for c in MESSAGE_CASES])
async def test_malformed_messages_close_the_connection(
    target: Server, control: Any, case: str, record: str
) -> None:
    """Protocol errors close with an error that allows reconnecting; nothing else is hurt."""
    ws = await open_ws(target)
    await ws.send(record + RS)
    assert await next_message(ws) == CLOSE
    await closed_within(ws)
    await assert_control_healthy(control)


OVERSIZE_CASES = [
    (
        "M22 one message over 32 KB",
        ['{"type":1,"target":"Echo","arguments":["' + "x" * 32768 + '"]}' + RS],
    ),
    (
        "M23 oversize over 40 frames",
        ['{"type":1,"target":"Echo","arguments":["'] + ["x" * 1000] * 40,
    ),
    (
        "M24 good then oversize",
        [
            '{"type":1,"invocationId":"g","target":"Echo","arguments":[1]}'
            + RS
            + '{"type":1,"target":"Echo","arguments":["'
            + "x" * 40000
            + '"]}'
            + RS
        ],
    ),
]


@pytest.mark.parametrize(("case", "frames"), OVERSIZE_CASES, ids=[c[0] for c in OVERSIZE_CASES])
async def test_oversize_messages(
    target: Server, control: Any, case: str, frames: list[str]
) -> None:
    """Past 32 KB the connection closes, as soon as the limit is passed."""
    ws = await open_ws(target)
    for frame in frames:
        await ws.send(frame)
    message = await next_message(ws)
    if case.startswith("M24") and message.get("type") == 3:
        # The good record was dispatched; its answer may beat the Close or be cut by it.
        assert message == {"type": 3, "invocationId": "g", "result": 1}
        message = await next_message(ws)
    assert message == CLOSE
    await closed_within(ws)
    await assert_control_healthy(control)


IGNORED = [
    ("M05 unknown type 99", '{"type":99}'),
    ("M05 unknown type -1", '{"type":-1}'),
    ("M15 extra property", '{"type":6,"extra":true}'),
    ("M30 Ack without stateful reconnect", '{"type":8,"sequenceId":5}'),
    ("I07 fire-and-forget unknown method", '{"type":1,"target":"Nope","arguments":[]}'),
    ("I07 fire-and-forget failure", '{"type":1,"target":"Fail","arguments":[]}'),
    ("I11 cancel unknown id", '{"type":5,"invocationId":"nope"}'),
    ("I13 stream item for unknown stream", '{"type":2,"invocationId":"nope","item":1}'),
    ("I18 completion nobody waits for", '{"type":3,"invocationId":"s99","result":1}'),
]


@pytest.mark.parametrize(("case", "record"), IGNORED, ids=[c[0] for c in IGNORED])
async def test_ignored_messages(target: Server, control: Any, case: str, record: str) -> None:
    """Forward-compatible or harmless messages are ignored; the connection stays usable."""
    ws = await open_ws(target)
    await ws.send(
        record + RS + '{"type":1,"invocationId":"after","target":"Echo","arguments":[1]}' + RS
    )
    assert await next_message(ws) == {"type": 3, "invocationId": "after", "result": 1}
    await ws.close()
    await assert_control_healthy(control)


COMPLETION_ERRORS = [
    (
        "I01 unknown method",
        "Nope",
        [],
        "Failed to invoke 'Nope' due to an error on the server. "
        "HubException: Method does not exist.",
    ),
    ("I02 private name", "_private", [], None),
    ("I02 dunder init", "__init__", [], None),
    ("I02 dunder class", "__class__", [], None),
    ("I02 lifecycle hook", "on_connected", [], None),
    ("I02 base member groups", "groups", [], None),
    ("I02 base member context", "context", [], None),
    ("I02 base member clients", "clients", [], None),
    ("I04 too few arguments", "Add", [1], "Failed to invoke 'Add' due to an error on the server."),
    (
        "I04 too many arguments",
        "Add",
        [1, 2, 3],
        "Failed to invoke 'Add' due to an error on the server.",
    ),
    ("I05 wrong types", "Add", ["a", {}], "Failed to invoke 'Add' due to an error on the server."),
    (
        "I08 secret exception text",
        "Fail",
        [],
        "An unexpected error occurred invoking 'Fail' on the server.",
    ),
    (
        "I16 invocation of a stream",
        "Counter",
        [1, 0],
        "The client attempted to invoke the streaming 'Counter' method with a "
        "non-streaming invocation.",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "args", "error"), COMPLETION_ERRORS, ids=[c[0] for c in COMPLETION_ERRORS]
)
async def test_invocation_errors(
    target: Server, control: Any, case: str, method: str, args: list[Any], error: str | None
) -> None:
    """Bad invocations fail alone, with generic texts that leak nothing."""
    ws = await open_ws(target)
    await ws.send(
        json.dumps({"type": 1, "invocationId": "1", "target": method, "arguments": args}) + RS
    )
    reply = await next_message(ws)
    expected = error or (
        f"Failed to invoke '{method}' due to an error on the server. "
        "HubException: Method does not exist."
    )
    assert reply == {"type": 3, "invocationId": "1", "error": expected}
    assert "secret detail" not in json.dumps(reply)
    await ws.send(
        '{"type":1,"invocationId":"2","target":"Echo","arguments":[{"__class__":"os.system"}]}' + RS
    )
    assert await next_message(ws) == {
        "type": 3,
        "invocationId": "2",
        "result": {"__class__": "os.system"},
    }
    await ws.close()
    await assert_control_healthy(control)


def fetch_json(url: str, method: str = "GET") -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
        return json.loads(response.read())


def http(server: Server, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(server.url + path, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def test_tokens_belong_to_their_user(target: Server, control: Any) -> None:
    """T11/T15: the public id is no token, and another user's token is useless."""
    body = await asyncio.to_thread(
        fetch_json, target.url + "/hubs/test/negotiate?negotiateVersion=1", "POST"
    )
    token, connection_id = body["connectionToken"], body["connectionId"]
    assert http(target, "GET", f"/hubs/test?id={connection_id}") == 404
    mallory = (await asyncio.to_thread(fetch_json, target.url + "/make-user?name=mallory"))["token"]
    bearer = {"Authorization": f"Bearer {mallory}"}
    assert http(target, "GET", f"/hubs/test?id={token}", bearer) == 404
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            f"ws://127.0.0.1:{target.port}/hubs/test?id={token}&access_token={mallory}"
        ):
            pass
    for _ in range(50):  # T14: guessing gets nowhere
        assert (
            http(target, "GET", f"/hubs/test?id={connection_id}.{int(time.time()):x}.n..AAAA")
            == 404
        )
    await assert_control_healthy(control)


async def test_nothing_is_left_behind(target: Server, control: Any) -> None:
    """After the whole barrage only the control connection remains."""
    for _ in range(50):
        await control.send(
            '{"type":1,"invocationId":"n","target":"ConnectionCount","arguments":[]}' + RS
        )
        if (await next_message(control))["result"] == 1:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("connections were left behind")
    assert target.proc.poll() is None
