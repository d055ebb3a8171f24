"""LiquidSpace (LeadSource 18): .NET-style PascalCase webhooks and HTML-only notifications.

US conventions: month-first dates, dollars unless stated. The tour request id
(``771245``) is the reference in both doors; venues are the listings.
"""

from leadrelay.adapters.liquidspace.spec import SPEC
from leadrelay.adapters.portal import PortalAdapter

ADAPTER = PortalAdapter(SPEC)
