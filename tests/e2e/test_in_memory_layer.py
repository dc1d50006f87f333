"""gunicorn on the in-memory layer: the view still answers, and the worker says why nobody hears.

The test settings use the in-memory layer, as a project does before it adds Redis. A sync view
sending through the hub context under gunicorn reaches no client (the connections are in
Daphne); each gunicorn worker logs one ERROR saying so and what to configure. Daphne, which
holds the connections, serves the same view without it.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.servers import Server, gunicorn

NOBODY = "reaches nobody"


def wait_for_text(server: Server, text: str, timeout: float = 60.0) -> str:
    """The server's log once it contains `text` (fails after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = server.output()
        if text in output:
            return output
        time.sleep(0.2)
    raise AssertionError(f"{text!r} never logged:\n{server.output()}")


def test_gunicorn_workers_on_the_in_memory_layer_log_that_sends_reach_nobody(
    artifacts: Path, test_db: str, server: Server
) -> None:
    env = {"SIGNALR_TEST_DB": test_db}
    with gunicorn("tests.wsgi:application", "tests.settings", artifacts, env) as web:
        for _ in range(6):
            assert web.get("/broadcast") == "sent"  # the view is not failed by it
        output = wait_for_text(web, NOBODY)
        assert "channels_redis.pubsub.RedisPubSubChannelLayer" in output
        assert "tests.testapp.hubs.TestHub" in output
        assert "Traceback" not in output
        # Once per worker process at most (gunicorn runs two here).
        assert 1 <= output.count(NOBODY) <= 2, output
    # The process that holds the connections sends without complaint.
    assert server.get("/broadcast") == "sent"
    assert NOBODY not in server.output()
