"""`RateLimitFilter`: a per-connection token bucket in front of every hub method call."""

from __future__ import annotations

import time
from typing import Any

from ..exceptions import HubConfigurationError, HubException
from .base import HubFilter, HubInvocationContext, InvokeNext


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimitFilter(HubFilter):
    """Lets each connection make `rate` calls a second on average, in bursts of `burst`.

    A call over the limit is refused before the hub method runs: the caller gets an error
    Completion carrying `message` (a HubException, so it is sent even without detailed
    errors), and the connection stays open. Every invocation counts, streams included; a
    refused call costs nothing. The bucket lives in the connection's `items`, so it goes
    away with the connection. Time comes from `clock` (monotonic seconds).
    """

    def __init__(
        self,
        rate: float = 10.0,
        burst: int = 20,
        message: str | None = None,
        clock: Any = time.monotonic,
    ) -> None:
        if not (isinstance(rate, int | float) and rate > 0):
            raise HubConfigurationError(f"RateLimitFilter rate must be > 0, not {rate!r}.")
        if not (isinstance(burst, int) and burst >= 1):
            raise HubConfigurationError(
                f"RateLimitFilter burst must be a whole number >= 1, not {burst!r}."
            )
        self.rate = float(rate)
        self.burst = burst
        self.message = message or (
            f"Rate limit exceeded: at most {rate:g} calls per second "
            f"(bursts of {burst}); try again later."
        )
        self.clock = clock
        self._key = object()  # this filter's entry in each connection's items

    async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
        """Take a token, or refuse the call with `message`."""
        items = context.context.items
        now = self.clock()
        bucket: _Bucket | None = items.get(self._key)
        if bucket is None:
            bucket = items[self._key] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.stamp) * self.rate)
            bucket.stamp = now
        if bucket.tokens < 1:
            raise HubException(self.message)
        bucket.tokens -= 1
        return await call_next(context)
