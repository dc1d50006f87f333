"""TypeScript for the official client, generated from the hubs' type hints.

`generate(hubs)` writes the module; `mapped_hubs()` finds the hubs the project serves.
`manage.py signalr_typescript` puts the two together.
"""

from __future__ import annotations

from .discovery import mapped_hubs
from .hubs import MappedHub, generate
from .types import TypeMapper

__all__ = ["MappedHub", "TypeMapper", "generate", "mapped_hubs"]
