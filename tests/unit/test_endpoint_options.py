"""Per-endpoint options: validation at mapping time, precedence, one lifetime per hub class,
authentication expiry and the negotiate response hook (in process)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache import caches
from django.test import Client, override_settings

from signalr_django import Hub, map_hub
from signalr_django.auth import (
    AUTH_EXPIRES,
    Requirement,
    as_requirement,
    create_access_token,
    signed_token_authenticator,
)
from signalr_django.conf import DEFAULTS, clear_cache
from signalr_django.core.connection import HubConnection
from signalr_django.core.heartbeat import Heartbeat
from signalr_django.core.load import load_key
from signalr_django.dispatch.handler import get_handler
from signalr_django.exceptions import HubConfigurationError
from signalr_django.protocol import Close, JsonHubProtocol
from signalr_django.transports.hooks import negotiate_headers
from signalr_django.transports.identity import read_identity, sign_identity


class OptionsHub(Hub):
    options = {"KEEP_ALIVE_INTERVAL": 5, "CLIENT_TIMEOUT_INTERVAL": 20}

    async def echo(self, value: Any) -> Any:
        return value


class OtherHub(Hub):
    async def echo(self, value: Any) -> Any:
        return value


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"KEEPALIVE": 1}, "Unknown SignalR option(s) KEEPALIVE"),
        ({"BACKPLANE": "none"}, "BACKPLANE cannot differ between the URLs of a hub"),
        ({"USER_ID_PROVIDER": "x.y"}, "USER_ID_PROVIDER cannot differ"),
        ({"TRANSPORTS": ["Carrier pigeon"]}, "Bad value ['Carrier pigeon'] for TRANSPORTS"),
        ({"TRANSPORTS": []}, "Bad value [] for TRANSPORTS"),
        ({"KEEP_ALIVE_INTERVAL": "fast"}, "Bad value 'fast' for KEEP_ALIVE_INTERVAL"),
        ({"KEEP_ALIVE_INTERVAL": -1}, "expected a number of seconds > 0"),
        ({"MAXIMUM_RECEIVE_MESSAGE_SIZE": 1.5}, "expected a whole number >= 1"),
        ({"ENABLE_DETAILED_ERRORS": 1}, "expected True or False"),
        ({"ALLOWED_ORIGINS": "http://a"}, "expected a list of strings"),
        ({"AUTHORIZE": "yes"}, "Bad value 'yes' for AUTHORIZE"),
        ({"AUTHORIZE": {"permissions": "app.x"}}, "must be a list of permission names"),
        ({"AUTHORIZE": {"test": 3}}, "must be callable"),
        ({"NEGOTIATE_RESPONSE_HOOK": 3}, "expected a callable or a dotted import path"),
    ],
)
def test_map_hub_refuses_bad_options_at_once(options: dict[str, Any], message: str) -> None:
    """An unknown name, a process-wide one or a bad value raises in map_hub itself."""
    with pytest.raises(HubConfigurationError) as info:
        map_hub("unit/bad", OtherHub, **options)
    assert message in str(info.value)
    assert "map_hub('unit/bad', OtherHub)" in str(info.value)


def test_endpoint_over_hub_over_settings_over_defaults() -> None:
    """Each value comes from the most specific place that sets it."""
    settings = {"KEEP_ALIVE_INTERVAL": 7, "HANDSHAKE_TIMEOUT": 9, "TRANSPORTS": ["LongPolling"]}
    with override_settings(SIGNALR=settings):
        clear_cache()
        try:
            map_hub("unit/precedence", OptionsHub, CLIENT_TIMEOUT_INTERVAL=40)
            options = get_handler(OptionsHub, "unit/precedence").options
            assert options.CLIENT_TIMEOUT_INTERVAL == 40  # endpoint
            assert options.KEEP_ALIVE_INTERVAL == 5  # hub
            assert options.HANDSHAKE_TIMEOUT == 9  # settings
            assert options.TRANSPORTS == ("LongPolling",)  # settings
            assert options.DISCONNECT_TIMEOUT == DEFAULTS.DISCONNECT_TIMEOUT
            plain = get_handler(OptionsHub).options
            assert plain.CLIENT_TIMEOUT_INTERVAL == 20
        finally:
            clear_cache()


def test_endpoints_of_one_hub_share_its_lifetime_manager_only() -> None:
    """Two URLs: two handlers with their own options and names, one lifetime manager."""
    map_hub("unit/ws", OtherHub, TRANSPORTS=["WebSockets"])
    map_hub("unit/lp", OtherHub, TRANSPORTS=["LongPolling"], AUTHORIZE=True)
    ws, lp = get_handler(OtherHub, "unit/ws"), get_handler(OtherHub, "unit/lp")
    assert ws is not lp
    assert ws.lifetime is lp.lifetime
    assert ws.options.TRANSPORTS == ("WebSockets",)
    assert lp.options.TRANSPORTS == ("LongPolling",)
    assert ws.options.AUTHORIZE is None
    assert Requirement() == lp.options.AUTHORIZE
    assert ws.endpoint_key != lp.endpoint_key
    assert ws.endpoint_key.startswith(ws.lifetime.key)
    # The same URL mapped again (an HTTP and a WebSocket router) is the same endpoint...
    map_hub("/unit/ws/", OtherHub, TRANSPORTS=["WebSockets"])
    assert get_handler(OtherHub, "unit/ws") is ws
    # ...but not with other options.
    with pytest.raises(HubConfigurationError, match="already mapped at 'unit/ws'"):
        map_hub("unit/ws", OtherHub, TRANSPORTS=["LongPolling"])


def test_authorize_forms() -> None:
    """True, None, a Requirement, or @authorize's keyword arguments."""

    def test(user: Any) -> bool:
        return True

    assert as_requirement(None) is None
    assert as_requirement(False) is None
    assert as_requirement(True) == Requirement()
    assert as_requirement({"permissions": ["a.b"], "test": test}) == Requirement(("a.b",), test)
    assert as_requirement(Requirement(("x.y",))) == Requirement(("x.y",))


@pytest.mark.django_db
async def test_the_token_authenticator_records_when_the_token_expires() -> None:
    """The earlier of the token's own max_age and ACCESS_TOKEN_MAX_AGE."""
    user: Any = SimpleNamespace(
        pk=7, get_username=lambda: "ada", is_staff=False, is_superuser=False
    )
    user.get_all_permissions = lambda: set()
    scope: dict[str, Any] = {}
    before = time.time()
    assert await signed_token_authenticator(scope, create_access_token(user, True, 30)) is not None
    assert before + 29 <= scope[AUTH_EXPIRES] <= time.time() + 30
    scope = {}
    await signed_token_authenticator(scope, create_access_token(user, True))
    assert before + 3598 <= scope[AUTH_EXPIRES] <= time.time() + 3600


def test_a_forwarded_identity_carries_the_expiry() -> None:
    """The owner of a forwarded start learns when the relaying worker's sign-in expires."""
    user = SimpleNamespace(pk=3, is_authenticated=True, get_username=lambda: "bo", is_staff=False)
    signed = sign_identity(user, "r1", "hub@x", 1234.5)
    identity = read_identity(signed, "r1", "hub@x")
    assert identity is not None and identity.expires == 1234.5
    assert read_identity(signed, "r1", "hub@y") is None  # another endpoint
    plain = read_identity(sign_identity(user, "r1", "hub@x"), "r1", "hub@x")
    assert plain is not None and plain.expires is None


class Quiet:
    """An outbound that records what it is given."""

    def __init__(self) -> None:
        self.written: list[Any] = []

    def write(self, payload: Any) -> int:
        self.written.append(payload)
        return 0

    def pending(self) -> int:
        return 0

    def pause_reading(self) -> bool:
        return False

    def resume_reading(self) -> None:
        return None

    def close(self) -> None:
        return None


def test_the_heartbeat_closes_a_connection_whose_authentication_expired() -> None:
    """A Close without an error that allows reconnecting, as ASP.NET Core sends."""
    from signalr_django.server import Outbound

    class Out(Quiet, Outbound):
        pass

    heartbeat = Heartbeat()
    opts = DEFAULTS.with_overrides({"CLOSE_ON_AUTHENTICATION_EXPIRATION": True}, "test")
    expired = HubConnection("a", object, opts, JsonHubProtocol(), {}, "WebSockets", Out())
    valid = HubConnection("b", object, opts, JsonHubProtocol(), {}, "WebSockets", Out())
    never = HubConnection("c", object, opts, JsonHubProtocol(), {}, "WebSockets", Out())
    expired.auth_expires = time.time() - 1
    valid.auth_expires = time.time() + 3600
    for c in (expired, valid, never):
        heartbeat.watch(c, 0.0)
    heartbeat.tick(time.monotonic())
    assert expired.aborted and expired.close_message == Close(allow_reconnect=True)
    assert not valid.aborted and not never.aborted


async def test_negotiate_hook_headers_are_checked() -> None:
    """Names and values become bytes; a newline in either is refused."""

    def hook(scope: dict[str, Any], user: Any, headers: list[Any]) -> None:
        headers.append(("Set-Cookie", "a=1"))
        headers.append((b"x-two", b"2"))

    options = DEFAULTS.with_overrides({"NEGOTIATE_RESPONSE_HOOK": hook}, "test")
    assert await negotiate_headers(options, {}, None) == [(b"set-cookie", b"a=1"), (b"x-two", b"2")]
    assert await negotiate_headers(DEFAULTS, {}, None) == []

    def bad(scope: dict[str, Any], user: Any, headers: list[Any]) -> None:
        headers.append((b"x-bad", b"1\r\nSet-Cookie: injected=1"))

    options = DEFAULTS.with_overrides({"NEGOTIATE_RESPONSE_HOOK": bad}, "test")
    with pytest.raises(ValueError, match="invalid header part"):
        await negotiate_headers(options, {}, None)


def test_the_wsgi_negotiate_redirect_applies_the_hook() -> None:
    """The WSGI site's negotiate gets the endpoint's hook headers and cookies too."""
    worker = "http://worker.invalid"
    with override_settings(SIGNALR={"WORKERS": [worker]}):
        clear_cache()
        try:
            caches["default"].set(load_key(worker), {"connections": 0, "limit": None}, 30)
            response = Client().post("/site/hubs/ep/hooked/negotiate")
        finally:
            clear_cache()
    assert response.status_code == 200
    assert response.json() == {"url": f"{worker}/hubs/ep/ws"}
    assert response["X-Negotiated-For"] == "anonymous"
    assert response.cookies["affinity"].value == "worker-1"
    assert response.cookies["affinity"]["httponly"]
    assert response.cookies["csrftoken"].value == "abc123"
    assert response.cookies["csrftoken"]["samesite"] == "Lax"
