"""Kontor (LeadSource 25): JSON:API webhooks and German notification mail (ISO-8859-1).

German conventions: day-first ``01.02.2027``, ``2.500`` is two thousand five
hundred, budgets in euros per month. References look like ``ktr_5c9e21``,
spaces like ``sp_10442``.
"""

from leadrelay.adapters.kontor.spec import SPEC
from leadrelay.adapters.portal import PortalAdapter

ADAPTER = PortalAdapter(SPEC)
