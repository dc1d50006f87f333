"""Django app configuration: registers system checks and settings-change hooks."""

from __future__ import annotations

from django.apps import AppConfig


class SignalRConfig(AppConfig):
    """`signalr_django` in INSTALLED_APPS."""

    name = "signalr_django"
    verbose_name = "SignalR"

    def ready(self) -> None:
        """Connect the options cache to `setting_changed` and register checks."""
        from django.core.signals import setting_changed

        from . import checks, conf
        from .core import load, shutdown
        from .presence import registry
        from .server import daphne

        setting_changed.connect(conf.clear_cache, dispatch_uid="signalr_django.conf")
        checks.register()
        shutdown.install()
        load.install()
        registry.install()
        daphne.tune_http()
