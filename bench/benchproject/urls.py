"""No Django views: everything is routed by the ASGI application in ``asgi.py``."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
