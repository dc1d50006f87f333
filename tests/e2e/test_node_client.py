"""The official JavaScript client (@microsoft/signalr in Node) against Daphne and uvicorn.

Every test runs on both servers: Daphne takes the fast path (`server/daphne.py`), uvicorn
the generic ASGI path (`QueuedOutbound`, reads paused by not calling `receive`).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers import Server

from .conftest import run_node

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def server(request: pytest.FixtureRequest) -> Server:
    """The server under test: the session's Daphne, then the session's uvicorn."""
    if request.param == "daphne":
        daphne: Server = request.getfixturevalue("server")
        return daphne
    uvicorn: Server = request.getfixturevalue("uvicorn_server")
    return uvicorn


# Every transport x protocol combination the official client allows (MessagePack is binary,
# and Server-Sent Events carry text only).
COMBINATIONS = [
    "WebSockets/json",
    "ServerSentEvents/json",
    "LongPolling/json",
    "WebSockets/messagepack",
    "LongPolling/messagepack",
]


@pytest.fixture(params=COMBINATIONS)
def transport(request: pytest.FixtureRequest) -> str:
    """Each scenario that takes this fixture runs over every transport and protocol."""
    value: str = request.param
    return value


def scenario(name: str, server: Server, transport: str = "") -> Any:
    kind, _, protocol = transport.partition("/")
    env = {"SIGNALR_TRANSPORT": kind, "SIGNALR_PROTOCOL": protocol or "json"}
    return run_node("run.mjs", name, server.url, env=env)


def test_invoke_and_send(server: Server, transport: str) -> None:
    """Invocations return results, void methods return null, `send` does not wait."""
    info = scenario("invokeAndSend", server, transport)
    assert f"{info['transport']}/{info['protocol']}" == transport


@pytest.mark.parametrize("transport", ["WebSockets/json", "WebSockets/messagepack"])
def test_values_travel_as_dotnet_would_write_them(server: Server, transport: str) -> None:
    """bytes, datetime, UUID, Decimal and dataclasses arrive and bind as documented."""
    scenario("values", server, transport)


def test_error_messages_are_exact(server: Server, transport: str) -> None:
    """Error texts match ASP.NET Core's, and the connection survives every one."""
    out = scenario("errors", server, transport)
    assert out["unknown"] == (
        "Failed to invoke 'DoesNotExist' due to an error on the server. "
        "HubException: Method does not exist."
    )
    assert out["privateName"].endswith("HubException: Method does not exist.")
    assert out["baseMember"].endswith("HubException: Method does not exist.")
    assert out["argCount"] == "Failed to invoke 'Add' due to an error on the server."
    assert out["binding"] == "Failed to invoke 'Add' due to an error on the server."
    assert out["failure"] == "An unexpected error occurred invoking 'Fail' on the server."
    assert out["hubException"] == (
        "An unexpected error occurred invoking 'FailHub' on the server. "
        "HubException: told the client"
    )
    assert out["streamMismatch"] == (
        "The client attempted to invoke the streaming 'Counter' method with a "
        "non-streaming invocation."
    )


def test_detailed_errors(server: Server) -> None:
    """With ENABLE_DETAILED_ERRORS the exception type and message reach the client."""
    out = scenario("detailedErrors", server)
    assert out["argCount"] == (
        "Failed to invoke 'Add' due to an error on the server. "
        "InvalidDataException: Invocation provides 1 argument(s) but target expects 2."
    )
    assert out["binding"] == (
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: "
        "Error binding arguments. Make sure that the types of the provided values match "
        "the types of the hub method being invoked."
    )
    assert out["failure"] == (
        "An unexpected error occurred invoking 'Fail' on the server. ValueError: secret detail"
    )
    assert out["hubException"].endswith("HubException: told the client")
    assert out["streamFailure"] == (
        "An error occurred on the server while streaming results. ValueError: stream broke"
    )


def test_every_clients_target(server: Server, transport: str) -> None:
    """all, caller, others, client, clients, all_except, group(s), group_except, others_in_group."""
    scenario("clientTargets", server, transport)


def test_users(server: Server, transport: str) -> None:
    """clients.user / clients.users reach every connection of the user, and only those."""
    out = scenario("users", server, transport)
    assert out["alice"] == [["user", "for alice"], ["users", "for both"]]
    assert out["bob"] == [["users", "for both"]]


def test_streaming_with_cancellation(server: Server, transport: str) -> None:
    """Async generators stream; disposing the subscription stops the generator."""
    out = scenario("streaming", server, transport)
    assert out["items"] == [0, 1, 2, 3, 4]


def test_client_to_server_streams(server: Server, transport: str) -> None:
    """A Subject argument arrives as an async iterator parameter."""
    out = scenario("uploadStreams", server, transport)
    assert out["joined"] == "got:a,b,c"
    assert out["wrong"] == (
        "An unexpected error occurred invoking 'Echo' on the server. "
        "HubException: Client sent 1 stream(s), Hub method expects 0."
    )


def test_server_initiated_close(server: Server, transport: str) -> None:
    """context.abort() closes without error; a raising on_connected closes with one."""
    out = scenario("serverClose", server, transport)
    assert out["abort"] is None
    assert (
        "Connection closed with an error. HubException: refused by on_connected" in (out["refused"])
    )


def test_keep_alive_and_client_timeout(server: Server) -> None:
    """The server pings every KEEP_ALIVE_INTERVAL and closes clients that stop pinging."""
    out = scenario("keepAlive", server)
    assert out["reason"] == "Server returned an error on close: Connection closed with an error."


def test_authorization(server: Server, transport: str) -> None:
    """@authorize on a hub refuses anonymous users; on a method it checks permissions."""
    out = scenario("authorization", server, transport)
    assert "401" in out["refused"]
    assert "401" in out["badToken"]
    assert out["who"] == "carol"
    assert out["denied"] == "Failed to invoke 'AdminOnly' because user is unauthorized"
    assert out["allowed"] == "admin ok"


def test_sync_hub_context_from_a_django_view(server: Server, transport: str) -> None:
    """A plain sync view sends to all, to a group and to one client through the hub context."""
    out = scenario("hubContextFromView", server, transport)
    assert ["view", "hello"] in out["a"]
    assert ["view-client", "c"] in out["a"]
    assert out["b"] == [["view", "hello"], ["view-group", "g"]]


def test_client_result_from_a_django_view(server: Server) -> None:
    """The sync hub context asks a client for a result from a plain sync view."""
    out = scenario("clientResultFromView", server, "WebSockets/json")
    assert out["answered"] == {"status": 200, "body": {"value": "answer to q1"}}
    assert out["failed"]["status"] == 502 and "no answer here" in out["failed"]["body"]["error"]
    assert out["gone"]["status"] == 404


def test_skip_negotiation(server: Server) -> None:
    """skipNegotiation + WebSockets connects without negotiate."""
    scenario("skipNegotiation", server)


def test_one_invocation_at_a_time_per_client(server: Server, transport: str) -> None:
    """MAXIMUM_PARALLEL_INVOCATIONS_PER_CLIENT = 1 queues a client's second call only."""
    scenario("parallelInvocations", server, transport)


def test_message_too_large_closes_with_error(server: Server, transport: str) -> None:
    """A message over 32 KB closes the connection with an error that allows reconnecting."""
    out = scenario("messageTooLarge", server, transport)
    assert out["reason"] == "Server returned an error on close: Connection closed with an error."


def test_client_results(server: Server, transport: str) -> None:
    """Hubs await client answers: results, errors, timeouts, and disconnects."""
    out = scenario("clientResults", server, transport)
    assert out["caller"] == ["answer:first", "answer:second"]
    assert out["other"] == "answer:q"
    assert out["error"] == "client error: Error: nope"
    assert out["noHandler"] == "client error: Client didn't provide a result."
    assert out["timeout"] == "timeout"
    assert out["unknown"] == "gone: Connection 'no-such-id' does not exist."
    assert out["disconnected"].startswith("gone: Connection '")
    assert out["disconnected"].endswith("' disconnected.")


def test_stateful_reconnect_delivers_every_message_once(server: Server) -> None:
    """The socket is cut mid-stream; the client resumes the same connection, nothing lost."""
    out = scenario("statefulReconnect", server, "WebSockets/json")
    assert out["count"] == out["total"] == 60
    assert out["unique"] == 60
    assert out["inOrder"] is True
    assert 10 <= out["cutAt"] < 60


def test_stateful_reconnect_is_negotiated_per_hub(server: Server) -> None:
    """Only hubs with ALLOW_STATEFUL_RECONNECTS grant it."""
    out = scenario("statefulNegotiation", server)
    assert out == {"stateful": True, "plain": None, "firstKey": "useStatefulReconnect"}


def test_stateful_reconnect_with_messagepack(server: Server) -> None:
    """Binary frames are replayed just the same."""
    out = scenario("statefulReconnect", server, "WebSockets/messagepack")
    assert out["count"] == out["unique"] == 60


def test_transport_fallback(server: Server) -> None:
    """The client falls back to SSE when the WebSocket upgrade is refused, and to long
    polling for MessagePack, which SSE cannot carry."""
    out = scenario("fallback", server)
    assert out == {
        "json": "ServerSentEvents",
        "messagepack": "LongPolling",
        "noWebSockets": "ServerSentEvents",
    }
