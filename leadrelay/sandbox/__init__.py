"""A local Nexudus sandbox: a real HTTP server that follows Nexudus's documented contract for
the calls leadrelay makes (``/work/shared/NEXUDUS.md`` and the Create CrmOpportunity page).

Faithful to Nexudus
- ``POST /api/token``: form-encoded password (``totp`` when the login has 2FA) and
  refresh grants; a JSON body is ``unsupported_grant_type``; bad credentials are 400
  ``invalid_grant``. Every other ``/api/`` call needs ``Bearer`` or HTTP Basic, else 401
  ``{"Message": "Authorization has been denied for this request."}``.
- Paths, PascalCase JSON, the list envelope (``page``/``size``; ``PageNumber``/``PageSize``
  ignored), the write envelope and the 400 validation envelope (``Message`` joins
  "Prop: message").
- Coworkers: required ``FullName``, ``Email``, ``CountryId``, ``SimpleTimeZoneId``; an e-mail
  in use is refused; ``Coworker_Email`` matches exactly; without ``InvoicingBusinessId`` and
  ``Businesses`` a coworker lands in the login's default location; ``CreateUser`` "sends" a
  welcome e-mail (recorded).
- Opportunities: the documented required fields, the LeadSource/LossReason/Status enums,
  5,000 per location, full-record validation on PUT (Id in the body), text filters that
  *contain* (``CrmOpportunity_Name``), Win/Lose stages setting ``Status``.
- Limits per login, as exact sliding windows: 1 call per 100 ms, 120/min, 5,000/h,
  200,000/day; writes 60/min, 5,000/day. Throttled: 409, empty body, ``Retry-After``; the
  refused call does not count; ``/api/token`` is exempt.
- Observed behaviours: a dead ``CoworkerId`` answers 401 ``{"Message": "Access Denied"}``;
  switchable quirks answer 429 instead of 409, or 200 ``WasSuccessful: false``.

Simplified
- One process, in memory; ids per tenant (coworkers from 100001, opportunities from 500001).
- Only the fields leadrelay uses are checked (types, enums, references); other posted fields
  are stored and returned as sent. ``CountryId``/``SimpleTimeZoneId`` need only be positive.
  Messages are the sandbox's own wording; ``Message`` joins several with a newline. A body
  that is not a JSON object binds as an empty record. Dates are stored as ISO UTC text.
- Businesses, boards and columns are read-only seed data (plus a "Lost" stage per board).
- Unknown ids answer 404 ``{"Message": …}``; wrong methods 405; role checks do not exist.
- ``speed`` shortens every window and interval of the limiter (not token lifetimes);
  ``Retry-After`` is whole seconds at speed ≤ 1 and hundredths above.
- Fault injection (``faults.py``) and the control API (``/_sandbox/``, ``control.py``) are
  sandbox-only. A reset forgets calls still in flight (they are not logged).

Modules: ``options`` (settings), ``state`` (all data, one lock), ``tenant``/``seed`` (an
account and its demo data), ``schema``/``resources`` (validation and the five resources),
``auth``, ``limits``, ``faults``, ``envelopes`` (Nexudus JSON shapes), ``api`` (routes),
``app`` (the gateway), ``control``, ``server`` (``serve``, ``running_sandbox``).
"""

from leadrelay.sandbox.app import SandboxApp, create_app
from leadrelay.sandbox.faults import FaultRule
from leadrelay.sandbox.options import (
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    Limits,
    Quirks,
    SandboxOptions,
    TenantSpec,
    TokenSettings,
)
from leadrelay.sandbox.server import SandboxHandle, running_sandbox, serve
from leadrelay.sandbox.state import SandboxState

__all__ = [
    "DEFAULT_PASSWORD",
    "DEFAULT_USERNAME",
    "FaultRule",
    "Limits",
    "Quirks",
    "SandboxApp",
    "SandboxHandle",
    "SandboxOptions",
    "SandboxState",
    "TenantSpec",
    "TokenSettings",
    "create_app",
    "running_sandbox",
    "serve",
]
