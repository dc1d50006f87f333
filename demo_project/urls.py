"""URLs of the demo site; the hub itself is routed in `asgi.py`, not here."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("demo_project.chat.urls")),
    path("admin/", admin.site.urls),
]
