"""`manage.py signalr_typescript`: a TypeScript module of typed wrappers for the hubs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    """Generate TypeScript from the hubs' type hints (see docs/typescript.md)."""

    help = (
        "Write a TypeScript module with interfaces for the hubs' types and a typed wrapper "
        "over @microsoft/signalr's HubConnection for each hub. Without hub paths, every hub "
        "the project maps (ASGI_APPLICATION and ROOT_URLCONF) is included."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """`--out`, `--protocol` and optional dotted paths of hub classes."""
        parser.add_argument(
            "hubs", nargs="*", metavar="HUB", help="Dotted paths of hub classes to include."
        )
        parser.add_argument("--out", "-o", help="The .ts file to write (default: stdout).")
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; fail when the --out file differs from what would be written "
            "(for CI: the committed module is up to date).",
        )
        parser.add_argument(
            "--protocol",
            choices=("json", "messagepack"),
            default="json",
            help="The hub protocol the client uses: it decides how bytes, datetime and "
            "timedelta are typed (default: json).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Find the hubs, generate, write; problems with single types are warnings."""
        from ...typescript import generate, mapped_hubs
        from ...typescript.discovery import import_hubs

        def warn(message: str) -> None:
            self.stderr.write(f"warning: {message}")

        if options["hubs"]:
            try:
                hubs = import_hubs(options["hubs"], mapped_hubs())
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        else:
            hubs = mapped_hubs(warn)
            if not hubs:
                raise CommandError(
                    "No hubs found in ASGI_APPLICATION or ROOT_URLCONF; pass the dotted "
                    "paths of hub classes."
                )
        text = generate(hubs, protocol=options["protocol"], warn=warn)
        out = options.get("out")
        if options["check"]:
            self._check(out, text)
            return
        if not out:
            self.stdout.write(text, ending="")
            return
        path = Path(out)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {out}: {exc}") from None
        self.stderr.write(f"Wrote {len(hubs)} hub(s) to {out}.")

    def _check(self, out: str | None, text: str) -> None:
        """`--check`: compare with the file instead of writing it."""
        if not out:
            raise CommandError("--check needs --out: the file to compare.")
        try:
            current = Path(out).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {out}: {exc}") from None
        if current != text:
            raise CommandError(
                f"{out} is out of date: run signalr_typescript again without --check."
            )
        self.stderr.write(f"{out} is up to date.")
