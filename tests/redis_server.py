"""A Redis for tests: REDIS_URL when set, else a private redis-server on a free port.

Tests that need Redis fail (never skip) when neither is available: the README's test
command installs redis-server.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from tests.servers import free_port, wait_for_port


@contextlib.contextmanager
def redis_url() -> Iterator[str]:
    """Yield a redis:// URL that accepts connections."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed and REDIS_URL is not set")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, proc=proc)  # type: ignore[arg-type]
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)
