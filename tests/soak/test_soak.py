"""Soak: minutes of traffic on two workers with Redis restarts; run with `scripts/soak`.

Not part of the regular suite (marker `soak`). It reports, per minute: deliveries, losses,
duplicates, reorders, and each worker's RSS, so a slow leak or a lost-membership bug shows
up as a trend. SOAK_MINUTES (default 5) and SOAK_CLIENTS (default 500) size it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.e2e.test_faults import RedisProcess
from tests.servers import daphne, raise_file_limit

pytestmark = [pytest.mark.soak, pytest.mark.timeout(3600)]

RS = "\x1e"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def receiver(port: int, group: str, seen: list[int]) -> Any:
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/hubs/test", ping_interval=None)
    await ws.send('{"protocol":"json","version":1}' + RS)
    await ws.recv()
    await ws.send(
        json.dumps({"type": 1, "invocationId": "j", "target": "Join", "arguments": [group]}) + RS
    )

    async def read() -> None:
        async for frame in ws:
            for record in frame.split(RS):
                if '"target":"Receive"' in record:
                    seen.append(int(json.loads(record)["arguments"][1]))

    return ws, asyncio.create_task(read())


async def test_soak(artifacts: Path, test_db: str) -> None:
    """Broadcasts for SOAK_MINUTES with a Redis restart every minute."""
    raise_file_limit()
    minutes = float(os.environ.get("SOAK_MINUTES", "5"))
    clients = int(os.environ.get("SOAK_CLIENTS", "500"))
    redis = RedisProcess()
    redis.start()
    env = {"SIGNALR_TEST_DB": test_db, "REDIS_URL": redis.url}
    try:
        with (
            daphne("tests.asgi:application", "tests.settings_redis", artifacts, env, "soak-a") as a,
            daphne("tests.asgi:application", "tests.settings_redis", artifacts, env, "soak-b") as b,
        ):
            seen: list[list[int]] = [[] for _ in range(clients)]
            conns = [await receiver((a, b)[i % 2].port, "soak", seen[i]) for i in range(clients)]
            sender = await websockets.connect(f"ws://127.0.0.1:{a.port}/hubs/test")
            await sender.send('{"protocol":"json","version":1}' + RS)
            await sender.recv()
            start = time.monotonic()
            n = 0
            minute = 0
            while time.monotonic() - start < minutes * 60:
                await sender.send(
                    json.dumps({"type": 1, "target": "SendToGroup", "arguments": ["soak", str(n)]})
                    + RS
                )
                n += 1
                await asyncio.sleep(0.02)
                if time.monotonic() - start > (minute + 1) * 60:
                    minute += 1
                    got = sum(len(s) for s in seen)
                    dups = sum(len(s) - len(set(s)) for s in seen)
                    reordered = sum(1 for s in seen if s != sorted(s))
                    print(
                        f"minute {minute}: sent {n}, delivered {got}/{n * clients}, "
                        f"duplicates {dups}, reordered {reordered}, "
                        f"RSS a={rss_kib(a.proc.pid)} KiB b={rss_kib(b.proc.pid)} KiB",
                        flush=True,
                    )
                    redis.kill()
                    await asyncio.sleep(1)
                    redis.start()
            await asyncio.sleep(2)
            dups = sum(len(s) - len(set(s)) for s in seen)
            assert dups == 0
            assert all(s == sorted(s) for s in seen)
            for ws, task in conns:
                task.cancel()
                await ws.close()
    finally:
        redis.kill()
