"""The connection registry: one claim per connection id, kept while its token can start one."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import pytest
from django.core.cache.backends.locmem import LocMemCache

from signalr_django.transports import ownership
from signalr_django.transports.negotiate import ConnectionToken, new_connection_id


def token(issued: float | None = None) -> ConnectionToken:
    return ConnectionToken(
        new_connection_id(), int(time.time() if issued is None else issued), False, ""
    )


def cache() -> LocMemCache:
    return LocMemCache(f"ownership-{new_connection_id()}", {})


async def test_one_claim_wins_and_later_ones_are_refused() -> None:
    store = cache()
    t = token()
    assert await ownership.claim(store, t, 15, 2) is True
    assert await ownership.claim(store, t, 15, 2) is False  # another worker, or after the end
    assert await ownership.claim(store, token(), 15, 2) is True  # other ids are independent


async def test_concurrent_claims_have_exactly_one_winner() -> None:
    store = cache()
    t = token()
    results = await asyncio.gather(*(ownership.claim(store, t, 15, 2) for _ in range(20)))
    assert results.count(True) == 1


def test_claims_outlive_the_tokens_start_window() -> None:
    """The claim is the tombstone: it must last until no worker accepts the token."""
    now = time.time()
    fresh = token(now)
    assert ownership.claim_ttl(fresh, 15, now) >= 15 + 5 + ownership.CLOCK_MARGIN - 1
    old = token(now - 100)  # no worker starts a connection with it any more
    assert ownership.claim_ttl(old, 15, now) >= 1


def test_keys_do_not_contain_the_id() -> None:
    cid = new_connection_id()
    key = ownership.claim_key(cid)
    assert cid not in key and key.startswith("signalr:owner:")
    assert key == ownership.claim_key(cid) != ownership.claim_key(new_connection_id())


class Broken:
    async def aadd(self, *args: Any, **kwargs: Any) -> bool:
        raise ConnectionError("redis down")


class Hanging:
    async def aadd(self, *args: Any, **kwargs: Any) -> bool:
        await asyncio.sleep(3600)
        return True


@pytest.mark.parametrize("store", [Broken(), Hanging()])
async def test_an_unreachable_store_refuses_clearly_and_quickly(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ownership._last_warning = -1e9
    with pytest.raises(ownership.RegistryUnavailable, match="unreachable"):
        await ownership.claim(store, token(), 15, 0.2)
    with pytest.raises(ownership.RegistryUnavailable):
        await ownership.claim(store, token(), 15, 0.2)
    warnings = [r for r in caplog.records if r.name == ownership.__name__]
    assert len(warnings) == 1  # rate-limited
    assert "redis down" not in warnings[0].getMessage()


async def test_single_process_without_backplane_never_asks_the_store() -> None:
    handler: Any = SimpleNamespace(lifetime=SimpleNamespace(backplane=None), options=None)
    assert await ownership.claim_for(handler, token()) is True


async def test_with_a_backplane_the_named_cache_is_used(settings: Any) -> None:
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "owners": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "owners",
        },
    }
    from django.core.cache import caches

    from signalr_django.conf import DEFAULTS

    options = DEFAULTS.with_overrides({"LOAD_CACHE": "owners"}, "test")
    handler: Any = SimpleNamespace(lifetime=SimpleNamespace(backplane=object()), options=options)
    t = token()
    assert await ownership.claim_for(handler, t) is True
    assert await ownership.claim_for(handler, t) is False
    assert caches["owners"].get(ownership.claim_key(t.connection_id)) is not None
    assert caches["default"].get(ownership.claim_key(t.connection_id)) is None
