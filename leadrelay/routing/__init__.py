"""The routing file: Nexudus accounts, locations, channels and inboxes (DESIGN.md §5).

Loaded once at start and validated whole; every problem is reported with the
dotted key it is about (``channels.hubblehq.webhook.secret_env: …``), so an
operator can fix the file without reading code. Secrets may be inline, named by
``*_env`` (an environment variable) or by ``*_file`` (a file holding the value
alone, e.g. a Docker secret); they are resolved when first needed and never logged.

- ``base``: :class:`RoutingError`, the strict model every part is
- ``secrets``: inline, ``*_env`` and ``*_file`` secrets; :func:`check_secrets`
- ``patterns``: operators' regular expressions that could hang are refused
- ``accounts``: Nexudus accounts, their limits, their locations
- ``channels``: portals, their webhook signatures and how they are read
- ``inboxes``: IMAP inboxes and their OAuth2 logins
- ``model``: :class:`Routing`, the whole file, and its lookups
- ``loading``: :func:`load_routing` and :func:`parse_routing`
"""

from leadrelay.routing.accounts import LocationConfig, NexudusLimits
from leadrelay.routing.base import RoutingError
from leadrelay.routing.channels import ChannelConfig, ParseConfig, WebhookConfig
from leadrelay.routing.inboxes import InboxConfig, OAuth2Config
from leadrelay.routing.loading import load_routing, parse_routing
from leadrelay.routing.model import Routing, routing_json_schema
from leadrelay.routing.secrets import check_secrets

__all__ = [
    "ChannelConfig",
    "InboxConfig",
    "LocationConfig",
    "NexudusLimits",
    "OAuth2Config",
    "ParseConfig",
    "Routing",
    "RoutingError",
    "WebhookConfig",
    "check_secrets",
    "load_routing",
    "parse_routing",
    "routing_json_schema",
]
