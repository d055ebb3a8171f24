"""``/admin/leads/{id}``: a lead's whole story on one page (worker/lead_story.py).

Raw input taken apart safely (text escaped, HTML shown as text and as escaped source,
never rendered), the canonical lead, the dedupe and attribution decisions, every
Nexudus call, the dead letters, the audit entries, and deep links into the Nexudus
dashboard (LEADRELAY_NEXUDUS_WEB_OPPORTUNITY_URL / _CUSTOMER_URL).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from leadrelay import queries
from leadrelay.api.admin_web import _page, _session
from leadrelay.db import utcnow
from leadrelay.models import TERMINAL_STATES, LeadState
from leadrelay.worker.lead_story import story

router = APIRouter(prefix="/admin", include_in_schema=False)


def deep_link(template: str, record_id: int | None) -> str | None:
    return None if record_id is None else template.replace("{id}", str(int(record_id)))


@router.get("/leads/{lead_id}")
async def lead_page(request: Request, lead_id: int) -> HTMLResponse:
    _session(request)
    rt = request.app.state.runtime
    with rt.sessions() as session:
        found = await run_in_threadpool(story, session, lead_id, rt.routing)
    if found is None:
        return _page(request, "error.html", 404, title="Not found", message=f"no lead {lead_id}")
    lead = found.lead
    settled = LeadState(lead.state) in TERMINAL_STATES
    return _page(
        request,
        "lead.html",
        lead=lead,
        story=found,
        contact=(lead.lead or {}).get("contact") or {},
        attempts=found.attempts,
        letters=found.letters,
        canonical=queries.pretty_lead(lead.lead),
        opportunity_link=deep_link(rt.settings.nexudus_web_opportunity_url, lead.opportunity_id),
        customer_link=deep_link(rt.settings.nexudus_web_customer_url, lead.coworker_id),
        refresh=None if settled else 2,
        now=utcnow(),
    )
