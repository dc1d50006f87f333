"""Placeholder replaced at merge."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("signalr_django")


def warn_limited(kind: str, message: str, *args: Any) -> None:
    """Log one WARNING line without traceback."""
    logger.warning(message, *args)
