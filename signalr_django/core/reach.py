"""Sends that can reach nobody, said loudly once.

A gunicorn worker (or a management command, or a task queue worker) holds no hub connection:
a send through the hub context goes out through the channel layer to the ASGI workers that
hold them. With the in-memory layer (or no backplane at all) nothing leaves the process, so
the send completes, the view answers 200 and no client hears anything. The system check
(signalr.W007) catches the usual set-up before deployment; this catches it at run time,
whatever the settings looked like to the check.

A process counts as serving connections once a hub or connection-handler endpoint received
any request, a connection was registered, the lifespan start-up ran, or Twisted's reactor
(Daphne) runs. Only a send in a process that is none of these, over a layer that stays in
the process, is reported.

It logs an ERROR (once per process) rather than raising: the send would reach nobody either
way, but raising would also fail the request that made it, which usually did its real work
already (saved a model, then notified); a loud log line in every worker is the right size
for a deployment mistake the system check has already described.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..lifetime.manager import HubLifetimeManager

logger = logging.getLogger(__name__)

serving = False
_reported = False


def mark_serving() -> None:
    """This process serves connections; settings problems are logged now, once."""
    global serving
    if serving:
        return
    serving = True
    from ..conf import settings_problems

    for problem in settings_problems():
        effect = "Ignored" if problem.check_id == "signalr.E001" else "The default applies"
        logger.error("%s %s until it is fixed (%s).", problem.message, effect, problem.check_id)


def check_send(lifetime: HubLifetimeManager) -> None:
    """Log once when a hub-context send from this process cannot reach any client."""
    if serving or _reported:
        return
    _check(lifetime)


def _check(lifetime: HubLifetimeManager) -> None:
    global _reported
    from ..lifetime.backplane import layer_is_local
    from ..lifetime.manager import _managers
    from ..server.daphne import reactor_running

    if reactor_running() or any(m.loop is not None for m in list(_managers.values())):
        mark_serving()  # Daphne runs here, or a connection was registered: later sends skip
        return
    backplane = lifetime.backplane
    if backplane is not None and not layer_is_local(backplane.layer):
        return
    _reported = True
    logger.error(
        "A message sent through the hub context of %s reaches nobody: this process serves "
        "no hub connections (a WSGI worker, a management command or a task queue worker?) "
        "and %s, so nothing leaves it. Configure CHANNEL_LAYERS with "
        "channels_redis.pubsub.RedisPubSubChannelLayer (the same in every process) so "
        "sends reach the ASGI workers that hold the connections; see system check "
        "signalr.W007. Reported once per process.",
        lifetime.hub_name,
        _why_local(lifetime),
    )


def _why_local(lifetime: HubLifetimeManager) -> str:
    from ..conf import global_options

    options = global_options()
    if lifetime.backplane is not None:
        return f"the channel layer {options.CHANNEL_LAYER!r} is the in-memory one"
    if options.BACKPLANE == "none":
        return "SIGNALR['BACKPLANE'] is 'none'"
    return f"the channel layer {options.CHANNEL_LAYER!r} is in-memory or missing"


def reset() -> None:
    """Forget what this process did (tests)."""
    global serving, _reported
    serving = False
    _reported = False
