"""Schedule entries: one poll of each configured inbox every ``poll_interval_seconds``.

The elected scheduler (worker/scheduling/periodic.py) sends each entry's task to
the control queue when it is due; an entry keeps Celery beat's shape.
"""

from __future__ import annotations

from typing import Any

from leadrelay.config_check import configured_routing
from leadrelay.errors import ConfigurationError
from leadrelay.routing import Routing
from leadrelay.settings import Settings

POLL_TASK = "leadrelay.poll_inbox"


def beat_entries(routing: Routing) -> dict[str, dict[str, Any]]:
    return {
        f"poll-inbox-{name}": {
            "task": POLL_TASK,
            "schedule": inbox.poll_interval_seconds,
            "args": [name],
            # a tick that waited longer than the interval is stale: the next one is due anyway
            "options": {"expires": inbox.poll_interval_seconds},
        }
        for name, inbox in routing.inboxes.items()
    }


def inbox_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    """The entries for the routing file in use; none when it cannot be read.

    ``leadrelay beat`` and ``leadrelay worker`` validate the file before starting
    and stop with the problems, so an unreadable file never gets this far there.
    """
    try:
        return beat_entries(configured_routing(settings))
    except ConfigurationError:  # a RoutingError too
        return {}
