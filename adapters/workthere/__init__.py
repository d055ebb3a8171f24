"""Workthere (LeadSource 24, Savills): flat webhooks of loose human strings, multipart mail.

Values come as people typed them: ``10-15`` desks, ``£4,000 - £6,000 pcm``,
``January 2027``, ``27/11/2026 16:45``. The Savills consultant is the broker
contact; references look like ``WT-2026-004417``, properties like ``P-2231``.
"""

from leadrelay.adapters.portal import PortalAdapter
from leadrelay.adapters.workthere.spec import SPEC

ADAPTER = PortalAdapter(SPEC)
