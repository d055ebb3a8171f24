"""HubbleHq (LeadSource 17): nested snake_case webhooks and plain-text notification mail.

Hubble's account manager for the operator is the broker contact; references look
like ``enq_8F2KQ7XW``; listings are numeric (``The Foundry, Old Street (#48213)``).
"""

from leadrelay.adapters.hubblehq.spec import SPEC
from leadrelay.adapters.portal import PortalAdapter

ADAPTER = PortalAdapter(SPEC)
