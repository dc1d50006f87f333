"""The ASGI application's own CPU per long-polling invocation, without a server.

    python bench/http_app.py               # the bench project's http router
    python bench/http_app.py --auth        # the same router inside Channels' AuthMiddlewareStack

``transports.py`` measures a whole Daphne worker, where Daphne and Twisted take most of each
HTTP request. This drives the bench project's ASGI application directly, in one process,
with the messages Daphne would send: negotiate, the first poll, the handshake, then
``Echo`` invocations, each a POST and the poll that carries its Completion back (two HTTP
requests through Channels' routers, the hub endpoint and the hub). It prints the process
CPU time per invocation (all threads, so ``--auth``'s thread hops count), the minimum and
the median of several rounds. Run it from two checkouts to compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if not __package__:  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.benchproject.settings")

# What aiohttp (the generator of transports.py) sends, as Daphne hands it over.
HEADERS = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"Python/3.11 aiohttp/3.14"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"x-requested-with", b"XMLHttpRequest"),
    (b"content-type", b"text/plain;charset=UTF-8"),
]
HUB = "/hubs/echo"


def application(auth: bool) -> Any:
    """The bench project's HTTP application, optionally inside ``AuthMiddlewareStack``."""
    from bench.benchproject.asgi import HUB_PATTERNS
    from bench.benchproject.asgi import application as app

    if not auth:
        return app
    from channels.auth import AuthMiddlewareStack
    from channels.routing import ProtocolTypeRouter, URLRouter

    return ProtocolTypeRouter({"http": AuthMiddlewareStack(URLRouter(HUB_PATTERNS))})


def scope(method: str, path: str, query: bytes) -> dict[str, Any]:
    """An HTTP scope as Daphne builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": HEADERS,
        "client": ["127.0.0.1", 50000],
        "server": ["127.0.0.1", 8000],
    }


async def request(app: Any, method: str, path: str, query: bytes, body: bytes = b"") -> bytes:
    """One request through ``app``: its response body (the status must be 200)."""
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope(method, path, query), receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"{method} {path}: status {sent[0]['status']}")
    return b"".join(m.get("body", b"") for m in sent[1:])


async def measure(app: Any, invocations: int, rounds: int) -> list[float]:
    """CPU µs per invocation of each round, after a warm-up round."""
    body = await request(app, "POST", HUB + "/negotiate", b"negotiateVersion=1")
    query = b"id=" + json.loads(body)["connectionToken"].encode()
    await request(app, "GET", HUB, query)  # the first poll starts the connection
    await request(app, "POST", HUB, query, b'{"protocol":"json","version":1}\x1e')
    await request(app, "GET", HUB, query)  # the handshake response
    invocation = b'{"type":1,"invocationId":"%d","target":"Echo","arguments":["%s"]}\x1e'

    async def echo(i: int) -> None:
        await request(app, "POST", HUB, query, invocation % (i, b"x" * 64))
        reply = await request(app, "GET", HUB, query)
        if b'"result"' not in reply:
            raise SystemExit(f"unexpected poll body {reply!r}")

    for i in range(invocations // 4):
        await echo(i)
    results = []
    for _ in range(rounds):
        start = time.process_time()
        for i in range(invocations):
            await echo(i)
        results.append((time.process_time() - start) / invocations * 1e6)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    """Print the minimum and median CPU µs per invocation."""
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--auth", action="store_true", help="wrap the router in AuthMiddlewareStack")
    p.add_argument("-n", "--invocations", type=int, default=2000, help="per round (2000)")
    p.add_argument("--rounds", type=int, default=7, help="rounds (7)")
    args = p.parse_args(argv)

    import django

    django.setup()
    results = sorted(asyncio.run(measure(application(args.auth), args.invocations, args.rounds)))
    print(
        f"long-polling invocation (POST + poll) through the ASGI application"
        f"{' inside AuthMiddlewareStack' if args.auth else ''}: "
        f"min {results[0]:.1f} µs, median {results[len(results) // 2]:.1f} µs CPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
