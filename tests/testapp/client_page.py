"""A bare page with the official browser bundles, for the Chromium transport matrix."""

from __future__ import annotations

from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest, HttpResponse

ROOT = Path(__file__).resolve().parents[2] / "node_modules" / "@microsoft"
BUNDLES = {
    "signalr.js": ROOT / "signalr" / "dist" / "browser" / "signalr.min.js",
    "msgpack.js": ROOT
    / "signalr-protocol-msgpack"
    / "dist"
    / "browser"
    / "signalr-protocol-msgpack.min.js",
}

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>client</title>
<script src="/client/signalr.js"></script><script src="/client/msgpack.js"></script>
</head><body><p id="status">loaded</p></body></html>"""


def page(request: HttpRequest) -> HttpResponse:
    """The page the browser test drives."""
    return HttpResponse(PAGE)


def bundle(request: HttpRequest, name: str) -> FileResponse:
    """The official client, straight from node_modules (installed by npm, not committed)."""
    path = BUNDLES.get(name)
    if path is None or not path.exists():
        raise Http404(name)
    return FileResponse(path.open("rb"), content_type="text/javascript")
