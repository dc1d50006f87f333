"""Every SIGNALR mistake is a system check with an id, a message and a hint, never a traceback."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core import checks
from django.test import override_settings

from signalr_django import Hub, map_hub
from signalr_django.checks import check_deployment, check_hubs, check_settings
from signalr_django.conf import DEFAULTS, HubOptions, clear_cache, global_options
from signalr_django.exceptions import HubConfigurationError
from signalr_django.settings_schema import SCHEMA, problem

ROOT = Path(__file__).resolve().parents[2]
MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
PUBSUB = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379"]},
    }
}


def run(check: Any, **settings: Any) -> list[checks.CheckMessage]:
    with override_settings(**settings):
        clear_cache()
        try:
            result: list[checks.CheckMessage] = check()
            return result
        finally:
            clear_cache()


def found(check: Any, check_id: str, **settings: Any) -> checks.CheckMessage:
    """The one message `check_id` of `check` under `settings` (fails when absent)."""
    messages = [m for m in run(check, **settings) if m.id == check_id]
    assert messages, f"{check_id} not reported; got {run(check, **settings)}"
    return messages[0]


def test_an_unknown_key_is_reported_not_raised() -> None:
    """E001 names the key and its likely spelling; reading settings does not raise."""
    with override_settings(SIGNALR={"KEEPALIVE_INTERVAL": 10}):
        clear_cache()
        try:
            assert global_options().KEEP_ALIVE_INTERVAL == DEFAULTS.KEEP_ALIVE_INTERVAL
            from django.apps import apps

            apps.get_app_config("signalr_django").ready()  # raised here before
        finally:
            clear_cache()
    message = found(check_settings, "signalr.E001", SIGNALR={"KEEPALIVE_INTERVAL": 10})
    assert message.level == checks.ERROR
    assert "KEEPALIVE_INTERVAL (did you mean KEEP_ALIVE_INTERVAL?)" in message.msg
    assert message.hint


def test_a_value_of_the_wrong_type_is_reported_and_its_default_applies() -> None:
    """A string timeout used to crash `check` with a TypeError (E004)."""
    settings = {"CLIENT_TIMEOUT_INTERVAL": "30"}
    message = found(check_settings, "signalr.E004", SIGNALR=settings)
    assert "'30' for CLIENT_TIMEOUT_INTERVAL in settings.SIGNALR" in message.msg
    assert "a number of seconds > 0" in message.msg
    assert "CLIENT_TIMEOUT_INTERVAL:" in (message.hint or "")
    with override_settings(SIGNALR=settings):
        clear_cache()
        try:
            assert global_options().CLIENT_TIMEOUT_INTERVAL == 30.0
        finally:
            clear_cache()


@pytest.mark.parametrize(
    ("settings", "check_id", "text"),
    [
        ({"KEEP_ALIVE_INTERVAL": -1}, "signalr.E004", "-1 for KEEP_ALIVE_INTERVAL"),
        ({"KEEP_ALIVE_INTERVAL": 0}, "signalr.E004", "0 for KEEP_ALIVE_INTERVAL"),
        ({"HANDSHAKE_TIMEOUT": float("nan")}, "signalr.E004", "HANDSHAKE_TIMEOUT"),
        ({"ENABLE_DETAILED_ERRORS": "yes"}, "signalr.E004", "True or False"),
        ({"MAXIMUM_RECEIVE_MESSAGE_SIZE": 0}, "signalr.E004", "a whole number >= 1"),
        ({"MINIMUM_NEGOTIATE_VERSION": 2}, "signalr.E004", "one of 0, 1"),
        ({"WORKERS": "http://a"}, "signalr.E004", "a list of strings"),
        ({"SUPPORTED_PROTOCOLS": ["msgpack"]}, "signalr.E005", "json, messagepack"),
        ({"TRANSPORTS": ["Carrier pigeon"]}, "signalr.E002", "WebSockets"),
        ({"BACKPLANE": "redis"}, "signalr.E003", "'redis' for BACKPLANE"),
        ({"MAXIMUM_GROUPS_PER_CLIENT": -1}, "signalr.E010", "or None"),
        ({"AUTHORIZE": "staff"}, "signalr.E009", "AUTHORIZE"),
        ({"AUTHENTICATOR": "myapp.tokens.check"}, "signalr.E006", "does not import"),
        ({"USER_ID_PROVIDER": "signalr_django.users.nothing"}, "signalr.E006", "USER_ID"),
        ({"NEGOTIATE_RESPONSE_HOOK": "signalr_django.conf.DEFAULTS"}, "signalr.E006", "callable"),
        ({"CHANNEL_LAYER": "elsewhere"}, "signalr.E007", "'elsewhere', which is not in"),
        ({"LOAD_CACHE": "shared"}, "signalr.E008", "'shared', which is not in CACHES"),
    ],
)
def test_each_mistake_has_its_check(settings: dict[str, Any], check_id: str, text: str) -> None:
    """Types, ranges, allowed values, import paths and aliases: one error each."""
    message = found(check_settings, check_id, SIGNALR=settings)
    assert message.level == checks.ERROR
    assert text in message.msg
    assert message.hint


def test_good_settings_pass() -> None:
    """Values at the edges of their ranges, None where allowed, real paths and aliases."""
    good = {
        "SHUTDOWN_DRAIN_TIMEOUT": 0,
        "SUPPORTED_PROTOCOLS": ["json", "messagepack"],
        "AUTHENTICATOR": None,
        "NEGOTIATE_RESPONSE_HOOK": "signalr_django.users.default_user_id",
        "MAX_CONNECTIONS": None,
        "MAXIMUM_GROUPS_PER_CLIENT": 0,
        "WORKERS": ("http://a", "http://b"),
        "AUTHORIZE": {"permissions": ["app.use"]},
    }
    assert run(check_settings, SIGNALR=good) == []
    assert run(check_settings, SIGNALR={"CHANNEL_LAYER": "other"}, CHANNEL_LAYERS=MEMORY)


def test_a_settings_value_that_is_not_a_dict() -> None:
    """SIGNALR itself of the wrong type is E001, not an AttributeError."""
    assert "must be a dict" in found(check_settings, "signalr.E001", SIGNALR=[("A", 1)]).msg


def test_every_option_has_a_schema_entry_its_default_satisfies() -> None:
    """The schema describes every option (the settings reference is built from it)."""
    for field in dataclasses.fields(HubOptions):
        assert field.name in SCHEMA, f"{field.name} has no entry in settings_schema.SCHEMA"
        default = getattr(DEFAULTS, field.name)
        assert problem(field.name, default) is None, field.name
        assert SCHEMA[field.name].meaning


def test_a_misspelt_hub_option_fails_where_the_hub_is_mapped() -> None:
    """Keys and values of a hub's `options` are checked by map_hub, not at negotiate."""

    class TypoHub(Hub):
        options = {"KEEP_ALIVE_INTERVALL": 5}

    class ValueHub(Hub):
        options = {"KEEP_ALIVE_INTERVAL": "5"}

    with pytest.raises(HubConfigurationError, match=r"did you mean KEEP_ALIVE_INTERVAL\?"):
        map_hub("unit/typo", TypoHub)
    value = r"'5' for KEEP_ALIVE_INTERVAL in \S*ValueHub.options"
    with pytest.raises(HubConfigurationError, match=value):
        map_hub("unit/value", ValueHub)
    from django.core.exceptions import ImproperlyConfigured

    assert issubclass(HubConfigurationError, ImproperlyConfigured)


@pytest.mark.parametrize(
    ("asgi", "text"),
    [
        ("tests.unit.bad_hub_asgi.application", "KEEP_ALIVE_INTERVALL"),
        ("tests.unit.bad_endpoint_asgi.application", "-1 for KEEP_ALIVE_INTERVAL"),
    ],
)
def test_hub_options_are_checked_through_asgi_application(asgi: str, text: str) -> None:
    """`manage.py check` never imports asgi.py by itself: the hub check does (E030)."""
    message = found(check_hubs, "signalr.E030", ASGI_APPLICATION=asgi)
    assert text in message.msg
    assert "ASGI_APPLICATION" in (message.hint or "")


def test_the_mapped_hubs_of_the_test_project_pass() -> None:
    """The test project's own asgi.py maps every hub with good options."""
    assert [m for m in run(check_hubs) if m.id == "signalr.E030"] == []


def test_wsgi_site_with_the_in_memory_layer_warns_even_in_debug() -> None:
    """W007: gunicorn plus the in-memory layer loses every send, DEBUG or not."""
    site = {"WSGI_APPLICATION": "tests.wsgi.application", "CHANNEL_LAYERS": MEMORY}
    message = found(check_deployment, "signalr.W007", DEBUG=True, **site)
    assert message.level == checks.WARNING
    assert "reach no client" in message.msg
    assert "channels_redis" in (message.hint or "")
    assert "signalr.W007" not in ids(run(check_deployment, DEBUG=True, CHANNEL_LAYERS=MEMORY))
    redis_site = {**site, "CHANNEL_LAYERS": PUBSUB}
    assert "signalr.W007" not in ids(run(check_deployment, DEBUG=True, **redis_site))
    # Production settings already get W002, which says the same: not twice.
    production = ids(run(check_deployment, DEBUG=False, **site))
    assert "signalr.W002" in production
    assert "signalr.W007" not in production


def ids(messages: list[checks.CheckMessage]) -> set[str]:
    return {m.id for m in messages if m.id}


def test_every_check_id_is_listed_in_the_readme() -> None:
    """The README's "System checks" table lists each id the package can report."""
    source = "\n".join(p.read_text() for p in (ROOT / "signalr_django").rglob("*.py"))
    used = set(re.findall(r"signalr\.[EW]\d{3}", source))
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## System checks", 1)[1].split("\n## ", 1)[0]
    assert used, "no check ids found"
    missing = sorted(i for i in used if f"`{i}`" not in section)
    assert not missing, f"not in the README's System checks table: {missing}"


def test_manage_py_check_prints_the_problems_without_a_traceback() -> None:
    """The cases from the field, in one `manage.py check` run: a list, not a crash."""
    broken = {
        "KEEPALIVE": 10,
        "CLIENT_TIMEOUT_INTERVAL": "30",
        "KEEP_ALIVE_INTERVAL": -1,
        "SUPPORTED_PROTOCOLS": ["msgpack"],
        "AUTHENTICATOR": "myproject.tokens.missing",
        "CHANNEL_LAYER": "elsewhere",
    }
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_overrides",
        "SIGNALR_TEST_SETTINGS": json.dumps(broken),
        "SIGNALR_TEST_ASGI": "tests.unit.bad_hub_asgi.application",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    for check_id in ("E001", "E004", "E005", "E006", "E007", "E030"):
        assert f"signalr.{check_id}" in output, output
    assert "KEEPALIVE (did you mean KEEP_ALIVE_INTERVAL?)" in output
    assert "HINT:" in output


def test_the_settings_reference_lists_every_option() -> None:
    """docs/checks.md has a row per option, and the checks table the README has."""
    reference = (ROOT / "docs" / "checks.md").read_text()
    missing = [name for name in SCHEMA if f"| `{name}` |" not in reference]
    assert not missing, f"not in docs/checks.md: {missing}"
    source = "\n".join(p.read_text() for p in (ROOT / "signalr_django").rglob("*.py"))
    for check_id in set(re.findall(r"signalr\.[EW]\d{3}", source)):
        assert f"`{check_id}`" in reference, check_id


def test_an_unreadable_authorize_setting_fails_closed() -> None:
    """A broken AUTHORIZE refuses everyone instead of falling back to "anyone may connect"."""
    with override_settings(SIGNALR={"AUTHORIZE": {"permissions": "app.use"}}):
        clear_cache()
        try:
            requirement = global_options().AUTHORIZE
        finally:
            clear_cache()
    assert requirement is not None and requirement.test is not None
    assert requirement.test(object()) is False


def test_odd_keys_and_huge_values_give_short_messages() -> None:
    """A non-string key or a megabyte value still yields one readable line each."""
    messages = run(check_settings, SIGNALR={1: "x", "TRANSPORTS": ["x" * 1_000_000]})
    assert {"signalr.E001", "signalr.E002"} <= ids(messages)
    assert all(len(m.msg) < 2000 for m in messages)
