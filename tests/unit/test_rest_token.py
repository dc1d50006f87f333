"""REST API tokens (HS256, aud = request URL, exp) and the REST_API setting."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from signalr_django.exceptions import HubConfigurationError
from signalr_django.rest.config import parse
from signalr_django.rest.token import TokenError, sign, verify
from tests.testapp.hubs import CapsHub

KEY = "k" * 32
URL = "https://example.net/api/hubs/chat/:send"


def claims(**extra: Any) -> dict[str, Any]:
    return {"aud": URL, "exp": time.time() + 3600, **extra}


def b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_signed_token_for_this_url_passes() -> None:
    token = sign(claims(nameid="cron"), KEY)
    assert verify(token, [KEY], URL)["nameid"] == "cron"


def test_audience_ignores_query_trailing_slash_host_case_and_encoding() -> None:
    token = sign(claims(aud="HTTPS://Example.NET/api/hubs/chat/users/a%20b/"), KEY)
    verify(token, [KEY], "https://example.net/api/hubs/chat/users/a b?api-version=2022-06-01")


def test_a_list_of_audiences_needs_one_match() -> None:
    token = sign(claims(aud=["https://other/api", URL]), KEY)
    verify(token, [KEY], URL)


LATER = "later"  # replaced by a time 60 s after the test starts (not after collection)


@pytest.mark.parametrize(
    ("token_claims", "message"),
    [
        ({"aud": URL}, "no 'exp'"),
        ({"aud": URL, "exp": "soon"}, "not a number"),
        ({"aud": URL, "exp": -120}, "expired"),
        ({"aud": URL, "exp": LATER, "nbf": 600}, "not valid yet"),
        ({"exp": LATER}, "no 'aud'"),
        ({"aud": [], "exp": LATER}, "no 'aud'"),
        ({"aud": [URL, 3], "exp": LATER}, "no 'aud'"),
        ({"aud": "https://example.net/api/hubs/other/:send", "exp": LATER}, "audience"),
    ],
)
def test_bad_claims_are_refused(token_claims: dict[str, Any], message: str) -> None:
    """Times are relative to now: `exp`/`nbf` numbers are offsets in seconds."""
    now = time.time()
    resolved = {
        k: (
            now + 60 if v == LATER else now + v if k in ("exp", "nbf") and isinstance(v, int) else v
        )
        for k, v in token_claims.items()
    }
    with pytest.raises(TokenError, match=message):
        verify(sign(resolved, KEY), [KEY], URL)


def test_leeway_covers_clock_skew() -> None:
    token = sign(claims(exp=time.time() - 30), KEY)
    verify(token, [KEY], URL, leeway=60)
    with pytest.raises(TokenError, match="expired"):
        verify(token, [KEY], URL, leeway=0)


def test_wrong_key_and_key_rotation() -> None:
    token = sign(claims(), "old-key")
    with pytest.raises(TokenError, match="signature"):
        verify(token, [KEY], URL)
    verify(token, [KEY, "old-key"], URL)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        f"{b64({'alg': 'none'})}.{b64(claims())}.",
        f"{b64({'alg': 'RS256'})}.{b64(claims())}.AAAA",
        f"{base64.urlsafe_b64encode(b'[1]').decode()}.{b64(claims())}.AAAA",
        "é.é.é",
        "x" * 9000,
    ],
)
def test_malformed_tokens_are_refused_cleanly(token: str) -> None:
    with pytest.raises(TokenError):
        verify(token, [KEY], URL)


def test_the_error_never_repeats_the_token() -> None:
    token = sign(claims(exp=1), KEY)
    with pytest.raises(TokenError) as info:
        verify(token, [KEY], URL)
    assert token not in str(info.value)
    assert token.split(".")[1] not in str(info.value)


def test_tampered_payload_is_refused() -> None:
    header, _, signature = sign(claims(), KEY).split(".")
    forged = f"{header}.{b64(claims(nameid='admin'))}.{signature}"
    with pytest.raises(TokenError, match="signature"):
        verify(forged, [KEY], URL)


# -- the setting ------------------------------------------------------------------------------


def test_setting_parses_hubs_by_lower_cased_name() -> None:
    config = parse({"ACCESS_KEY": ["a", "b"], "HUBS": {"Chat": "tests.testapp.hubs.CapsHub"}})
    assert config is not None
    assert config.keys == ("a", "b")
    assert config.hubs == {"chat": CapsHub}
    assert config.leeway == 60.0
    assert parse(None) is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("on", "expected a dict"),
        ({"ACCESS_KEY": "k", "HUBS": {"a": CapsHub}, "KEY": 1}, "unknown key"),
        ({"HUBS": {"a": CapsHub}}, "ACCESS_KEY"),
        ({"ACCESS_KEY": "", "HUBS": {"a": CapsHub}}, "ACCESS_KEY"),
        ({"ACCESS_KEY": "k"}, "HUBS"),
        ({"ACCESS_KEY": "k", "HUBS": {"1chat": CapsHub}}, "must start with a letter"),
        ({"ACCESS_KEY": "k", "HUBS": {"a": CapsHub, "A": CapsHub}}, "listed twice"),
        ({"ACCESS_KEY": "k", "HUBS": {"a": "tests.nope.Hub"}}, "cannot import"),
        ({"ACCESS_KEY": "k", "HUBS": {"a": 3}}, "hub class"),
        ({"ACCESS_KEY": "k", "HUBS": {"a": CapsHub}, "TOKEN_LEEWAY": -1}, "TOKEN_LEEWAY"),
    ],
)
def test_bad_settings_are_named(value: Any, message: str) -> None:
    with pytest.raises(HubConfigurationError, match=message):
        parse(value)
