"""App configuration of the demo chat."""

from __future__ import annotations

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """`demo_project.chat` in INSTALLED_APPS (templates and static files live in the app)."""

    name = "demo_project.chat"
    label = "chat"
    verbose_name = "Chat demo"
