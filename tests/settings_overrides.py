"""The test settings with SIGNALR keys and ASGI_APPLICATION taken from the environment.

`manage.py check` runs in a subprocess with these to show what a mistaken setting prints:
`SIGNALR_TEST_SETTINGS` is a JSON object merged into SIGNALR, `SIGNALR_TEST_ASGI` replaces
ASGI_APPLICATION.
"""

from __future__ import annotations

import json
import os

from tests.settings import *  # noqa: F403
from tests.settings import SIGNALR as _BASE

SIGNALR = {**_BASE, **json.loads(os.environ.get("SIGNALR_TEST_SETTINGS", "{}"))}
ASGI_APPLICATION = os.environ.get("SIGNALR_TEST_ASGI", "tests.asgi.application")
