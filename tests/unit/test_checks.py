"""System checks catch unsafe set-ups."""

from __future__ import annotations

from django.test import override_settings

from signalr_django.checks import check_deployment, check_settings
from signalr_django.conf import clear_cache


def ids(messages: list[object]) -> set[str]:
    return {m.id for m in messages}  # type: ignore[attr-defined]


def run(check: object, **settings: object) -> set[str]:
    with override_settings(**settings):
        clear_cache()
        try:
            return ids(check())  # type: ignore[operator]
        finally:
            clear_cache()


def test_unknown_settings_and_transports() -> None:
    """Misspelt options and transports are errors."""
    assert "signalr.E001" in run(check_settings, SIGNALR={"KEEPALIVE": 1})
    assert "signalr.E002" in run(check_settings, SIGNALR={"TRANSPORTS": ["Carrier pigeon"]})
    assert "signalr.W001" in run(
        check_settings, SIGNALR={"KEEP_ALIVE_INTERVAL": 20, "CLIENT_TIMEOUT_INTERVAL": 30}
    )
    assert run(check_settings, SIGNALR={}) == set()


def test_in_memory_layer_in_production() -> None:
    """The in-memory layer cannot reach other processes."""
    layers = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert "signalr.W002" in run(check_deployment, DEBUG=False, CHANNEL_LAYERS=layers)
    assert "signalr.W002" not in run(check_deployment, DEBUG=True, CHANNEL_LAYERS=layers)


def test_classic_layer_warnings() -> None:
    """The classic layer is flagged, and so is a socket timeout too short for redis-py 8."""
    short = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379"]},
        }
    }
    found = run(check_deployment, CHANNEL_LAYERS=short)
    assert {"signalr.W004", "signalr.W005"} <= found
    long = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://x", "socket_timeout": 10}]},
        }
    }
    assert "signalr.W005" not in run(check_deployment, CHANNEL_LAYERS=long)


def test_hubs_in_the_wsgi_urlconf() -> None:
    """map_hub patterns in ROOT_URLCONF are served by WSGI, which cannot hold them."""
    assert "signalr.W003" in run(check_deployment, ROOT_URLCONF="tests.unit.wsgi_hub_urls")
    assert "signalr.W003" not in run(check_deployment)


def test_connection_claims_need_a_shared_cache() -> None:
    """With a Redis layer, a process-local LOAD_CACHE cannot hold connection claims."""
    pubsub = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:6379"]},
        }
    }
    local = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    shared = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    assert "signalr.W006" in run(check_deployment, CHANNEL_LAYERS=pubsub, CACHES=local)
    assert "signalr.W006" not in run(check_deployment, CHANNEL_LAYERS=pubsub, CACHES=shared)
    memory = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert "signalr.W006" not in run(check_deployment, CHANNEL_LAYERS=memory, CACHES=local)
    assert "signalr.W006" not in run(
        check_deployment, CHANNEL_LAYERS=pubsub, CACHES=local, SIGNALR={"BACKPLANE": "none"}
    )


def test_per_connection_caps_must_be_whole_numbers_or_none() -> None:
    """A negative or fractional cap is an error; None (no cap) and 0 are fine."""
    assert "signalr.E010" in run(check_settings, SIGNALR={"MAXIMUM_GROUPS_PER_CLIENT": -1})
    assert "signalr.E010" in run(check_settings, SIGNALR={"MAXIMUM_USER_ID_LENGTH": 2.5})
    assert "signalr.E010" in run(
        check_settings, SIGNALR={"MAXIMUM_PARALLEL_STREAMS_PER_CLIENT": "100"}
    )
    fine = {"MAXIMUM_GROUPS_PER_CLIENT": None, "MAXIMUM_PARALLEL_UPLOAD_STREAMS_PER_CLIENT": 0}
    assert run(check_settings, SIGNALR=fine) == set()
