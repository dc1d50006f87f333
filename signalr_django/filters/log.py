"""`LoggingFilter`: one log line per hub method call, connect and disconnect."""

from __future__ import annotations

import logging
import time
from typing import Any

from ..core.logs import safe_id
from .base import (
    ConnectedNext,
    DisconnectedNext,
    HubFilter,
    HubInvocationContext,
    HubLifetimeContext,
    InvokeNext,
)


class LoggingFilter(HubFilter):
    """Logs each call (hub, method, connection, duration, outcome) at `level`.

    Arguments are left out unless `log_arguments` is set: they are the client's data. A
    failing call is logged with its exception's type and message only (the dispatcher
    already logs unexpected exceptions with their traceback) and the exception goes on
    unchanged. Nothing is measured when the logger does not log at `level`.
    """

    def __init__(
        self,
        logger: logging.Logger | str = "signalr_django.filters",
        level: int = logging.INFO,
        log_arguments: bool = False,
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level
        self.log_arguments = log_arguments

    async def invoke_method(self, context: HubInvocationContext, call_next: InvokeNext) -> Any:
        """Time the call and log how it ended."""
        if not self.logger.isEnabledFor(self.level):
            return await call_next(context)
        hub = type(context.hub).__name__
        connection = safe_id(context.context.connection_id)
        shown = f"{context.arguments!r}" if self.log_arguments else "..."
        started = time.perf_counter()
        try:
            result = await call_next(context)
        except Exception as exc:
            self.logger.log(
                self.level,
                "%s.%s(%s) on connection %s failed after %.1f ms: %s: %s",
                hub,
                context.method_name,
                shown,
                connection,
                (time.perf_counter() - started) * 1000,
                type(exc).__name__,
                exc,
            )
            raise
        self.logger.log(
            self.level,
            "%s.%s(%s) on connection %s returned in %.1f ms",
            hub,
            context.method_name,
            shown,
            connection,
            (time.perf_counter() - started) * 1000,
        )
        return result

    async def on_connected(self, context: HubLifetimeContext, call_next: ConnectedNext) -> None:
        """Log the connection once `on_connected` accepted it."""
        await call_next(context)
        self.logger.log(
            self.level,
            "%s: connection %s connected (%s)",
            type(context.hub).__name__,
            safe_id(context.context.connection_id),
            context.context.transport,
        )

    async def on_disconnected(
        self,
        context: HubLifetimeContext,
        exception: Exception | None,
        call_next: DisconnectedNext,
    ) -> None:
        """Log the end of the connection and why."""
        self.logger.log(
            self.level,
            "%s: connection %s disconnected%s",
            type(context.hub).__name__,
            safe_id(context.context.connection_id),
            f" ({type(exception).__name__}: {exception})" if exception else "",
        )
        await call_next(context, exception)
