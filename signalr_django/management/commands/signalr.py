"""`manage.py signalr`: the live state of the SignalR workers, from any process.

    manage.py signalr status                      workers, hubs, connection counts, load
    manage.py signalr connections HUB [--user U]  a hub's connections (or one user's)
    manage.py signalr groups HUB [--group G]      a hub's groups and member counts
    manage.py signalr close HUB CONNECTION_ID [--reason R] [--allow-reconnect]

HUB is a hub's dotted path (`chat.hubs.ChatHub`) or its class name when that is unique
among the hubs the workers serve. Every subcommand takes `--json` and `--timeout`. The
answers come from the workers over the backplane (see docs/management.md); a worker that
did not answer in time is named, and the command exits with status 2 then, so scripts can
tell a partial answer from a complete one.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ...context import run_sync
from ...exceptions import BackplaneError
from ...presence.answer import Answer
from ...presence.api import Presence, cluster_status

PARTIAL_EXIT = 2


class Command(BaseCommand):
    """Query and manage the SignalR connections of every worker."""

    help = "Show SignalR workers, hubs, connections and groups; close a connection."

    def add_arguments(self, parser: CommandParser) -> None:
        """Subcommands `status`, `connections`, `groups` and `close`."""
        subcommands = parser.add_subparsers(dest="subcommand", required=True)

        def add(name: str, help_text: str) -> CommandParser:
            sub: CommandParser = subcommands.add_parser(name, help=help_text)
            sub.add_argument("--json", action="store_true", help="print JSON")
            sub.add_argument(
                "--timeout", type=float, default=None, help="seconds to wait for the workers"
            )
            return sub

        add("status", "workers, hubs, connection counts and load")
        connections = add("connections", "a hub's connections")
        connections.add_argument("hub")
        connections.add_argument("--user", help="only this user's connections")
        connections.add_argument("--limit", type=int, default=1000, help="at most this many")
        groups = add("groups", "a hub's groups with their member counts")
        groups.add_argument("hub")
        groups.add_argument("--group", help="only this group's member count")
        close = add("close", "close a connection wherever it is")
        close.add_argument("hub")
        # Connection ids are base64url and may start with "-", which argparse reads as an
        # option: options first, then "--", then HUB and the id.
        close.add_argument(
            "connection_id",
            help="the connection's id; one that starts with '-' needs the options first, "
            "then '--': close --reason R -- HUB -Abc...",
        )
        close.add_argument("--reason", default=None, help="the error the client sees")
        close.add_argument(
            "--allow-reconnect", action="store_true", help="let the client reconnect"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Run one subcommand; a layer or cache that cannot be reached is a clear error."""
        from ...lifetime.default import default_backplane

        if default_backplane() is None:
            # Without a backplane this process could only describe itself, and it holds no
            # connections: say so rather than print an empty cluster.
            raise CommandError(
                "This process cannot reach the workers: there is no backplane (the channel "
                "layer is in-memory, missing, or SIGNALR['BACKPLANE'] is 'none'). Use a "
                "channel layer that reaches other processes (channels_redis), the same in "
                "every process."
            )
        try:
            self._run(options)
        except BackplaneError as exc:
            raise CommandError(f"The workers cannot be reached: {exc}") from exc

    def _run(self, options: dict[str, Any]) -> None:
        name = options["subcommand"]
        timeout = options["timeout"]
        if name == "status":
            self._status(run_sync(cluster_status(timeout)), options)
            return
        presence = Presence(self._resolve(options["hub"], timeout), timeout)
        if name == "connections":
            self._connections(presence, options)
        elif name == "groups":
            self._groups(presence, options)
        else:
            self._close(presence, options)

    # -- subcommands ----------------------------------------------------------------------

    def _status(self, answer: Answer[list[dict[str, Any]]], options: dict[str, Any]) -> None:
        if options["json"]:
            self._json(answer)
            return
        rows = []
        for worker in answer.value:
            limit = worker.get("limit")
            load = f"{worker['connections'] / limit:.0%}" if limit else "-"
            state = "draining" if worker.get("draining") else "serving"
            rows.append([worker["name"], worker["pid"], worker["connections"], load, state])
        rows += [[name, "-", "-", "-", "MISSING"] for name in answer.workers_missing]
        self._table(["WORKER", "PID", "CONNECTIONS", "LOAD", "STATE"], rows)
        hubs: dict[str, list[int]] = {}
        for worker in answer.value:
            for hub, counts in worker.get("hubs", {}).items():
                total = hubs.setdefault(hub, [0, 0])
                total[0] += counts.get("connections", 0)
                total[1] += counts.get("groups", 0)
        self.stdout.write("")
        self._table(
            ["HUB", "CONNECTIONS", "GROUPS*"], [[h, c, g] for h, (c, g) in sorted(hubs.items())]
        )
        self.stdout.write("* summed per worker: a group with members on two workers counts twice")
        self._finish(answer)

    def _connections(self, presence: Presence, options: dict[str, Any]) -> None:
        if options["user"]:
            ids = run_sync(presence.user_connections(options["user"]))
            if options["json"]:
                self._json(ids)
            else:
                self._table(["CONNECTION"], [[cid] for cid in ids.value])
            self._finish(ids)
            return
        answer = run_sync(presence.connections(options["limit"]))
        if options["json"]:
            self._json(answer)
        else:
            rows = [
                [c["id"], c["user"] or "-", c["transport"], c["protocol"], c["groups"], c["worker"]]
                for c in answer.value
            ]
            headers = ["CONNECTION", "USER", "TRANSPORT", "PROTOCOL", "GROUPS", "WORKER"]
            self._table(headers, rows)
        self._finish(answer)

    def _groups(self, presence: Presence, options: dict[str, Any]) -> None:
        if options["group"]:
            count = run_sync(presence.group_member_count(options["group"]))
            if options["json"]:
                self._json(count)
            else:
                self._table(["GROUP", "MEMBERS"], [[options["group"], count.value]])
            self._finish(count)
            return
        answer = run_sync(presence.groups())
        if options["json"]:
            self._json(answer)
        else:
            self._table(["GROUP", "MEMBERS"], [[g, n] for g, n in answer.value.items()])
        self._finish(answer)

    def _close(self, presence: Presence, options: dict[str, Any]) -> None:
        cid = options["connection_id"]
        closed = run_sync(
            presence.close_connection(cid, options["reason"], options["allow_reconnect"])
        )
        if options["json"]:
            self.stdout.write(json.dumps({"closed": closed, "connection_id": cid}))
        elif closed:
            self.stdout.write(f"Closed {cid}.")
        if not closed:
            raise CommandError(f"No worker holds connection {cid!r} (or it did not answer).")

    # -- resolving and output ---------------------------------------------------------

    def _resolve(self, hub: str, timeout: float | None) -> str:
        """A hub's full name from its dotted path or a class name the workers serve."""
        if "." in hub:
            return hub
        status = run_sync(cluster_status(timeout))
        served: set[str] = {name for worker in status.value for name in worker.get("hubs", {})}
        matches: list[str] = sorted(name for name in served if name.rsplit(".", 1)[-1] == hub)
        if len(matches) == 1:
            return matches[0]
        if not matches:
            known = ", ".join(sorted(served)) or "none yet"
            raise CommandError(f"No worker serves a hub named {hub!r}; served hubs: {known}.")
        raise CommandError(f"{hub!r} is ambiguous: {', '.join(matches)}; give the dotted path.")

    def _json(self, answer: Answer[Any]) -> None:
        self.stdout.write(json.dumps(answer.as_dict(), indent=2, default=str))

    def _table(self, headers: list[str], rows: list[list[Any]]) -> None:
        cells = [headers, *[[str(v) for v in row] for row in rows]]
        widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
        for row in cells:
            line = "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip())

    def _finish(self, answer: Answer[Any]) -> None:
        if answer.complete:
            return
        missing = ", ".join(answer.workers_missing)
        self.stderr.write(f"Partial answer: no reply from {missing}")
        raise SystemExit(PARTIAL_EXIT)
