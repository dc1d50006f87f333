"""REST API views: routing, authentication, status codes and body validation.

The operations are recorded (monkeypatched in `signalr_django.rest.ops`) so each route's
mapping is checked without servers; a few requests go through the real in-process hub
context. End-to-end behaviour across workers is in tests/e2e/test_rest_api.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client, override_settings

from signalr_django.exceptions import ConnectionNotFoundError, LimitExceededError
from signalr_django.rest import ops
from signalr_django.rest.token import sign
from tests.testapp.hubs import CapsHub, TestHub

KEY = "rest-api-test-key"
BASE = "http://testserver"
V = "api-version=2022-06-01"


def token(path: str, key: str = KEY, **extra: Any) -> str:
    return sign({"aud": BASE + path, "exp": time.time() + 3600, **extra}, key)


def call(
    method: str,
    path: str,
    body: Any = None,
    query: str = V,
    auth: str | None = None,
    raw: bytes | None = None,
) -> Any:
    headers = {"Authorization": auth if auth is not None else f"Bearer {token(path)}"}
    url = f"{path}?{query}" if query else path
    data: Any = raw if raw is not None else (b"" if body is None else json.dumps(body))
    return Client().generic(method, url, data, content_type="application/json", headers=headers)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every ops call as (name, *args); existence checks answer True for names "yes"."""
    recorded: list[tuple[Any, ...]] = []

    def recorder(name: str) -> Any:
        def op(*args: Any) -> Any:
            recorded.append((name, *args))
            if args[1:2] == ("gone",):
                raise ConnectionNotFoundError("Connection 'gone' does not exist.")
            if args[1:2] == ("slow",):
                raise ops.IncompleteAnswer(["http://w2"])
            if name.endswith("_exists") or name == "user_in_group":
                return args[1] == "yes"
            return True

        return op

    for name in [
        "send_all",
        "send_group",
        "send_user",
        "send_connection",
        "add_connection_to_group",
        "remove_connection_from_group",
        "remove_connection_from_all_groups",
        "add_user_to_group",
        "remove_user_from_group",
        "remove_user_from_all_groups",
        "connection_exists",
        "group_exists",
        "user_exists",
        "user_in_group",
        "close_connection",
        "close_user_connections",
    ]:
        monkeypatch.setattr(ops, name, recorder(name))
    return recorded


MESSAGE = {"target": "Receive", "arguments": ["hi", 1]}


@pytest.mark.parametrize(
    ("method", "path", "query", "status", "expected"),
    [
        ("POST", "/api/hubs/caps/:send", V, 202, ("send_all", CapsHub, "Receive", ["hi", 1], [])),
        (
            "POST",
            "/api/hubs/CAPS/:send",
            f"{V}&excluded=c1&excluded=c2",
            202,
            ("send_all", CapsHub, "Receive", ["hi", 1], ["c1", "c2"]),
        ),
        (
            "POST",
            "/api/hubs/test/users/u1/:send",
            V,
            202,
            ("send_user", TestHub, "u1", "Receive", ["hi", 1]),
        ),
        (
            "POST",
            "/api/hubs/caps/groups/room/:send",
            f"{V}&excluded=c1",
            202,
            ("send_group", CapsHub, "room", "Receive", ["hi", 1], ["c1"]),
        ),
        (
            "POST",
            "/api/hubs/caps/connections/c1/:send",
            V,
            202,
            ("send_connection", CapsHub, "c1", "Receive", ["hi", 1]),
        ),
    ],
)
def test_sends_are_accepted(
    calls: list[tuple[Any, ...]],
    method: str,
    path: str,
    query: str,
    status: int,
    expected: tuple[Any, ...],
) -> None:
    response = call(method, path, MESSAGE, query)
    assert response.status_code == status, response.content
    assert calls == [expected]


@pytest.mark.parametrize(
    ("method", "path", "status", "expected"),
    [
        (
            "PUT",
            "/api/hubs/caps/groups/room/connections/c1",
            200,
            ("add_connection_to_group", CapsHub, "c1", "room"),
        ),
        (
            "DELETE",
            "/api/hubs/caps/groups/room/connections/c1",
            200,
            ("remove_connection_from_group", CapsHub, "c1", "room"),
        ),
        (
            "PUT",
            "/api/hubs/caps/groups/room/connections/gone",
            404,
            ("add_connection_to_group", CapsHub, "gone", "room"),
        ),
        (
            "DELETE",
            "/api/hubs/caps/connections/c1/groups",
            200,
            ("remove_connection_from_all_groups", CapsHub, "c1"),
        ),
        (
            "DELETE",
            "/api/hubs/caps/connections/gone/groups",
            404,
            ("remove_connection_from_all_groups", CapsHub, "gone"),
        ),
        (
            "PUT",
            "/api/hubs/caps/users/u1/groups/room",
            200,
            ("add_user_to_group", CapsHub, "u1", "room"),
        ),
        (
            "DELETE",
            "/api/hubs/caps/users/u1/groups/room",
            204,
            ("remove_user_from_group", CapsHub, "u1", "room"),
        ),
        (
            "DELETE",
            "/api/hubs/caps/users/u1/groups",
            204,
            ("remove_user_from_all_groups", CapsHub, "u1"),
        ),
        ("DELETE", "/api/hubs/caps/connections/c1", 200, ("close_connection", CapsHub, "c1", None)),
        (
            "POST",
            "/api/hubs/caps/users/u1/:closeConnections",
            204,
            ("close_user_connections", CapsHub, "u1", None, []),
        ),
        ("HEAD", "/api/hubs/caps/connections/yes", 200, ("connection_exists", CapsHub, "yes")),
        ("HEAD", "/api/hubs/caps/connections/no", 404, ("connection_exists", CapsHub, "no")),
        ("HEAD", "/api/hubs/caps/groups/yes", 200, ("group_exists", CapsHub, "yes")),
        ("HEAD", "/api/hubs/caps/groups/no", 404, ("group_exists", CapsHub, "no")),
        ("HEAD", "/api/hubs/caps/users/yes", 200, ("user_exists", CapsHub, "yes")),
        ("HEAD", "/api/hubs/caps/users/no", 404, ("user_exists", CapsHub, "no")),
        (
            "HEAD",
            "/api/hubs/caps/users/yes/groups/room",
            200,
            ("user_in_group", CapsHub, "yes", "room"),
        ),
        (
            "HEAD",
            "/api/hubs/caps/users/no/groups/room",
            404,
            ("user_in_group", CapsHub, "no", "room"),
        ),
        ("HEAD", "/api/hubs/caps/users/slow", 503, ("user_exists", CapsHub, "slow")),
    ],
)
def test_management_routes(
    calls: list[tuple[Any, ...]], method: str, path: str, status: int, expected: tuple[Any, ...]
) -> None:
    response = call(method, path)
    assert response.status_code == status, response.content
    assert calls == [expected]
    if method == "HEAD":
        assert response.content == b""


def test_close_passes_the_reason_and_excluded(calls: list[tuple[Any, ...]]) -> None:
    assert (
        call("DELETE", "/api/hubs/caps/connections/c1", query=f"{V}&reason=bye").status_code == 200
    )
    path = "/api/hubs/caps/users/u1/:closeConnections"
    assert call("POST", path, query=f"{V}&reason=r&excluded=c2").status_code == 204
    assert calls == [
        ("close_connection", CapsHub, "c1", "bye"),
        ("close_user_connections", CapsHub, "u1", "r", ["c2"]),
    ]


def test_errors_carry_an_error_detail(calls: list[tuple[Any, ...]]) -> None:
    response = call("PUT", "/api/hubs/caps/groups/room/connections/gone")
    assert response.status_code == 404
    assert response.json() == {
        "code": "NotFound",
        "message": "Connection 'gone' does not exist.",
        "target": "connectionId",
    }
    slow = call("PUT", "/api/hubs/caps/users/slow/groups/room")
    assert slow.status_code == 503 and slow["Retry-After"] == "1"
    assert "http://w2" in slow.json()["message"]


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ("", "Authorization: Bearer"),
        ("Basic abc", "Authorization: Bearer"),
        ("Bearer not-a-jwt", "not a JWT"),
        (f"Bearer {token('/api/hubs/caps/:send', key='wrong')}", "signature"),
        (f"Bearer {token('/api/hubs/other/:send')}", "audience"),
        (f"Bearer {sign({'aud': BASE + '/api/hubs/caps/:send', 'exp': 1}, KEY)}", "expired"),
        (f"Bearer {sign({'aud': BASE + '/api/hubs/caps/:send'}, KEY)}", "exp"),
    ],
)
def test_tokens_are_required_and_checked(
    calls: list[tuple[Any, ...]], auth: str, message: str
) -> None:
    response = call("POST", "/api/hubs/caps/:send", MESSAGE, auth=auth)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["code"] == "Unauthorized"
    assert message in response.json()["message"]
    assert calls == []


def test_head_without_token_is_401_without_body(calls: list[tuple[Any, ...]]) -> None:
    response = call("HEAD", "/api/hubs/caps/users/yes", auth="")
    assert response.status_code == 401 and response.content == b""
    assert calls == []


@pytest.mark.parametrize(
    ("path", "body", "query", "target"),
    [
        ("/api/hubs/caps/:send", MESSAGE, "", "api-version"),
        ("/api/hubs/caps/:send", MESSAGE, "api-version=1.0", "api-version"),
        ("/api/hubs/caps/:send", None, V, "message"),
        ("/api/hubs/caps/:send", [1], V, "message"),
        ("/api/hubs/caps/:send", {"arguments": []}, V, "target"),
        ("/api/hubs/caps/:send", {"target": ""}, V, "target"),
        ("/api/hubs/caps/:send", {"target": 5}, V, "target"),
        ("/api/hubs/caps/:send", {"target": "x" * 2000}, V, "target"),
        ("/api/hubs/caps/:send", {"target": "R", "arguments": {"a": 1}}, V, "arguments"),
        ("/api/hubs/caps/:send", {"target": "R", "rawBytes": "AAAA"}, V, "rawBytes"),
        ("/api/hubs/caps/groups/x/:send", MESSAGE, V, "group"),
        ("/api/hubs/1caps/:send", MESSAGE, V, "hub"),
        ("/api/hubs/" + "c" * 129 + "/:send", MESSAGE, V, "hub"),
        ("/api/hubs/caps/groups/%20%20/:send", MESSAGE, V, "group"),
        ("/api/hubs/caps/users/u/groups/room", None, f"{V}&ttl=-5", "ttl"),
    ],
)
def test_bad_input_is_400_with_the_target(
    calls: list[tuple[Any, ...]], path: str, body: Any, query: str, target: str
) -> None:
    if target == "group" and "/x/" in path:
        path = path.replace("/x/", "/" + "g" * 17 + "/")  # CapsHub's MAXIMUM_GROUP_NAME_LENGTH
    method = "PUT" if "users" in path else "POST"
    response = call(method, path, body, query)
    assert response.status_code == 400, response.content
    assert response.json()["target"] == target
    assert calls == []


def test_invalid_json_and_utf8_are_400(calls: list[tuple[Any, ...]]) -> None:
    for raw in (
        b"{",
        b"\xff\xfe",
        b'{"target": "R", "arguments": [1,]}',
        b'{"target": "R", "arguments": [NaN]}',
        b'{"target": "R", "arguments": [-Infinity]}',
        b'{"target": "R", "arguments": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ):
        response = call("POST", "/api/hubs/caps/:send", raw=raw)
        assert response.status_code == 400
        assert response.json()["target"] == "message"
    assert calls == []


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_too_large_a_body_is_413(calls: list[tuple[Any, ...]]) -> None:
    body = {"target": "R", "arguments": ["x" * 2000]}
    assert call("POST", "/api/hubs/caps/:send", body).status_code == 413
    assert calls == []


def test_unknown_hub_is_404_and_wrong_method_405(calls: list[tuple[Any, ...]]) -> None:
    response = call("POST", "/api/hubs/nothere/:send", MESSAGE)
    assert response.status_code == 404 and response.json()["target"] == "hub"
    assert response["x-ms-error-code"] == "NotFound"
    assert call("POST", "/api/hubs/Some.Hub/:send", MESSAGE).status_code == 404
    response = call("GET", "/api/hubs/caps/users/u1")
    assert response.status_code == 405 and response["Allow"] == "HEAD"
    response = call("PATCH", "/api/hubs/caps/users/u1/groups/room")
    assert response["Allow"] == "DELETE, HEAD, PUT"
    assert call("POST", "/api/hubs/caps/:closeConnections").status_code == 501
    assert call("POST", "/api/hubs/caps/groups/room/:closeConnections").status_code == 501
    assert calls == []


def test_health_needs_no_token() -> None:
    response = Client().head("/api/health?api-version=2022-06-01")
    assert response.status_code == 200
    assert Client().post("/api/health").status_code == 405


def test_api_off_without_the_setting() -> None:
    with override_settings(SIGNALR={}):
        assert Client().head("/api/health").status_code == 404
        assert call("POST", "/api/hubs/caps/:send", MESSAGE).status_code == 404


def test_trailing_slash_and_audience_with_it() -> None:
    """A trailing slash on the URL or in `aud` makes no difference."""
    path = "/api/hubs/caps/users/nobody/"
    auth = f"Bearer {token(path)}"
    assert call("HEAD", path, auth=auth).status_code == 404


def test_in_process_hub_context_without_connections() -> None:
    """The real operations on one process: sends are accepted, nobody exists."""
    assert call("POST", "/api/hubs/caps/:send", MESSAGE).status_code == 202
    assert call("POST", "/api/hubs/caps/users/u1/:send", MESSAGE).status_code == 202
    assert call("HEAD", "/api/hubs/caps/users/u1").status_code == 404
    assert call("HEAD", "/api/hubs/caps/groups/room").status_code == 404
    assert call("HEAD", "/api/hubs/caps/connections/c1").status_code == 404
    assert call("HEAD", "/api/hubs/caps/users/u1/groups/room").status_code == 404
    assert call("DELETE", "/api/hubs/caps/connections/c1/groups").status_code == 404
    assert call("PUT", "/api/hubs/caps/users/u1/groups/room").status_code == 200


def test_limits_from_the_hub_are_400(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> None:
        raise LimitExceededError("Too many groups", "MAXIMUM_GROUPS_PER_CLIENT", 5)

    monkeypatch.setattr(ops, "add_connection_to_group", refuse)
    response = call("PUT", "/api/hubs/caps/groups/room/connections/c1")
    assert response.status_code == 400
    assert "MAXIMUM_GROUPS_PER_CLIENT" in response.json()["message"]


def test_a_broken_setting_is_a_500_and_a_system_check_error() -> None:
    """A hub that does not import: the API answers 500, `manage.py check` says why."""
    from signalr_django.checks import check_settings

    broken = {"REST_API": {"ACCESS_KEY": KEY, "HUBS": {"chat": "tests.nope.ChatHub"}}}
    with override_settings(SIGNALR=broken):
        response = call("POST", "/api/hubs/chat/:send", MESSAGE)
        assert response.status_code == 500
        assert response.json()["code"] == "InternalServerError"
        errors = [m for m in check_settings() if m.id == "signalr.E040"]
        assert len(errors) == 1 and "cannot import 'tests.nope.ChatHub'" in errors[0].msg
    with override_settings(SIGNALR={"REST_API": "on"}):
        assert [m.id for m in check_settings()] == ["signalr.E040"]


def test_a_channel_layer_failure_is_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from signalr_django.exceptions import BackplaneError

    def fail(*_: Any) -> None:
        raise BackplaneError("The channel layer did not answer.")

    monkeypatch.setattr(ops, "send_all", fail)
    response = call("POST", "/api/hubs/caps/:send", MESSAGE)
    assert response.status_code == 503
    assert response.json()["code"] == "ServiceUnavailable"


def test_ids_with_reserved_characters_keep_their_audience(calls: list[tuple[Any, ...]]) -> None:
    """A user id with "?", "#", " " and "%" (percent-encoded by the caller) is one segment."""
    path = "/api/hubs/caps/users/a%3Fb%23c%20d%25"
    response = Client().head(f"{path}?{V}", headers={"Authorization": f"Bearer {token(path)}"})
    assert response.status_code == 404
    assert calls == [("user_exists", CapsHub, "a?b#c d%")]


def test_csrf_middleware_lets_token_callers_through(calls: list[tuple[Any, ...]]) -> None:
    """Callers authenticate with a token, never a cookie: the views are CSRF-exempt."""
    from django.conf import settings

    middleware = [*settings.MIDDLEWARE, "django.middleware.csrf.CsrfViewMiddleware"]
    path = "/api/hubs/caps/:send"
    with override_settings(MIDDLEWARE=middleware):
        response = Client(enforce_csrf_checks=True).post(
            f"{path}?{V}",
            json.dumps(MESSAGE),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token(path)}"},
        )
    assert response.status_code == 202
