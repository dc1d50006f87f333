"""URLs of the demo site; the hub itself is routed in `asgi.py`, not here.

In the split deployment this is also where negotiate lives, on the WSGI site.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import URLPattern, URLResolver, include, path

from signalr_django import admin_views
from signalr_django.views import negotiate_redirect

from .chat.hubs import ChatHub

urlpatterns: list[URLPattern | URLResolver] = [
    path("", include("demo_project.chat.urls")),
    path("admin/", admin.site.urls),
    # Staff only: workers, hubs, connections and groups, refreshed live.
    path("signalr/status/", admin_views.status, name="signalr-status"),
]

if settings.DEMO_WORKERS:
    # Split deployment: the WSGI site negotiates (with the session) and redirects the client
    # to the least loaded Daphne worker.
    urlpatterns.append(negotiate_redirect("hubs/chat", ChatHub))

# gunicorn serves static files itself only in DEBUG (the demo's signalr.min.js).
urlpatterns += staticfiles_urlpatterns()
