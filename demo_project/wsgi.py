"""WSGI entry point (for example `gunicorn demo_project.wsgi`).

A WSGI server cannot hold WebSockets or long-lived requests, so it serves the pages only;
the hub is served by Daphne through `asgi.py`.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo_project.settings")

application = get_wsgi_application()
