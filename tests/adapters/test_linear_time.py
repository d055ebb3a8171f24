"""Hostile input costs linear time: four times the input, about four times the work, never sixteen.

Hypothesis builds hostile shapes — long runs of one character class, ``@`` and
dots, label-like lines, nested HTML, deep JSON — and feeds them through the
adapters' public ``parse`` (e-mail text, HTML, headers; webhook values and
keys) and the text helpers. Each shape is timed at n and 4n characters in CPU
time, best of three with the garbage collector paused, so a loaded machine
does not decide: linear work grows about 4×, quadratic 16×; above 8× fails.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from leadrelay.adapters import NotALead, ParseError, RawItem
from leadrelay.adapters.mail.html import html_to_text
from leadrelay.adapters.mail.pairs import pairs_in
from leadrelay.adapters.parsing.dates import parse_datetime
from leadrelay.adapters.parsing.labels import normalise_label
from leadrelay.adapters.parsing.money import parse_money
from leadrelay.adapters.parsing.quantities import parse_area_sqm, parse_count_range, parse_term_months
from leadrelay.adapters.parsing.text import (
    emails_in,
    phone_in,
    sections,
    split_listing,
    split_person,
    workspace_type,
)
from leadrelay.logs import mask_personal
from tests.adapters.support import context

SIZE = 8_000  # characters of hostile text at n; the test also runs 4n
GROWTH = 8.0  # linear ≈ 4, quadratic ≈ 16
FLOOR = 0.002  # seconds: below this a timing is noise, not a trend
UNITS = (
    "a",
    "1",
    ".",
    " ",
    "@",
    "a@",
    "a.",
    "1 ",
    "1 000 ",
    "000 0",
    "1 000,5",
    "(",
    "#1",
    '"',
    "\\",
    "a,",
    "re ",
    "=?x?q?=E9?= ",
    "<a x",
    "<dt>",
    "<div>",
    "<span class=label>",
    "Phone: 1\n",
    "Phone\n",
    "> x\n",
    "a | ",
    "enq_",
    "hubblehq.com/listings/1",
    "From: a@b.co\nTo: c@d.co\nSubject: x\n\n",
    "On 1 a <a@b.co> wrote:\n",
    "1 schrieb a:\n>\n",
    "> > 1 wrote:\n",
    "a\n:\n",
    "<blockquote>On 1 wrote:<br>",
    "<tr><th>Desks</th><td>1",
    "Phone\tEmail\n",
)
CHANNELS = ("hubblehq", "liquidspace", "workthere", "kontor")
HELPERS: tuple[Callable[[str], object], ...] = (
    emails_in,
    phone_in,
    split_person,
    split_listing,
    sections,
    workspace_type,
    normalise_label,
    parse_money,
    parse_datetime,
    parse_term_months,
    parse_count_range,
    parse_area_sqm,
    pairs_in,
    html_to_text,
    mask_personal,  # every log value passes through it
)


def _mail(
    body: str = "Email: ann@example.com",
    *,
    subject: str = "New enquiry",
    sender: str = "",
    html: bool = False,
) -> bytes:
    sender = sender or "HubbleHQ <notifications@hubblehq.com>"
    kind = "html" if html else "plain"
    return (
        f"From: {sender}\r\nTo: leads@example.com\r\nSubject: {subject}\r\n"
        "Message-ID: <fuzz@hubblehq.com>\r\n"
        f"Content-Type: text/{kind}; charset=utf-8\r\n\r\n{body}"
    ).encode()


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")


def _webhook_values(text: str) -> bytes:
    fields = ("email", "phone", "name", "message", "budget", "desks", "start_date", "listing", "company")
    return json.dumps({field: text for field in fields}).encode()


def _webhook_keys(text: str) -> bytes:
    """Deep and wide: every key the unit, a hundred levels down, then many leaves."""
    key = text[:40] or "a"
    leaves = {f"{key}{i}": text[:8] for i in range(len(text) // 16)}
    body: object = leaves
    for _ in range(100):
        body = {key: body}
    return json.dumps(body).encode()


DOORS: dict[str, Callable[[str], RawItem]] = {
    "e-mail text": lambda text: RawItem("email", _mail(text)),
    "e-mail html": lambda text: RawItem("email", _mail(text, html=True)),
    "e-mail subject": lambda text: RawItem("email", _mail(subject=_one_line(text))),
    "e-mail sender": lambda text: RawItem("email", _mail(sender=_one_line(text))),
    "webhook values": lambda text: RawItem("webhook", _webhook_values(text)),
    "webhook keys": lambda text: RawItem("webhook", _webhook_keys(text)),
}


@dataclass(frozen=True)
class Shape:
    unit: str
    door: str  # a key of DOORS, or "helpers"
    channel: str

    def text(self, size: int) -> str:
        return self.unit * (size // len(self.unit))

    def run(self, size: int) -> Callable[[], None]:
        text = self.text(size)
        if self.door == "helpers":
            return lambda: [helper(text) for helper in HELPERS] and None
        item = DOORS[self.door](text)
        ctx, adapter = context(self.channel)

        def parse() -> None:
            with contextlib.suppress(ParseError, NotALead):  # a clean refusal is an answer too
                adapter.parse(item, ctx)

        return parse


def _seconds(call: Callable[[], None]) -> float:
    """The best of three CPU times, the collector paused: the least disturbed by a busy machine."""
    best = math.inf
    for _ in range(3):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            call()
            best = min(best, time.process_time() - start)
        finally:
            gc.enable()
    return best


SHAPES = st.builds(
    Shape,
    unit=st.sampled_from(UNITS) | st.text(alphabet="a1.@ (<>#:\n\t-", min_size=1, max_size=5),
    door=st.sampled_from([*DOORS, "helpers"]),
    channel=st.sampled_from(CHANNELS),
)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(SHAPES)
@example(Shape("a", "e-mail text", "hubblehq"))  # the address regex that was quadratic
@example(Shape("a", "helpers", "hubblehq"))
@example(Shape(" ", "e-mail text", "kontor"))
@example(Shape("1", "helpers", "workthere"))
@example(Shape("#1", "helpers", "hubblehq"))
@example(Shape("(", "helpers", "hubblehq"))
@example(Shape("000 0", "helpers", "kontor"))  # space-grouped thousands, a run of groups that ends badly
@example(Shape("1 000,5", "helpers", "workthere"))
@example(Shape("Phone: 1\n", "e-mail text", "liquidspace"))
@example(Shape("> x\n", "e-mail text", "hubblehq"))
@example(Shape("1 schrieb a:\n>\n", "e-mail text", "kontor"))  # attributions quoting nothing
@example(Shape("On 1 a <a@b.co> wrote:\n", "e-mail text", "hubblehq"))  # replies to replies
@example(Shape("a\n:\n", "e-mail text", "workthere"))  # every line a possible attribution's end
@example(Shape("Phone\tEmail\n", "e-mail text", "hubblehq"))  # header rows over header rows
@example(Shape("<blockquote>On 1 wrote:<br>", "e-mail html", "liquidspace"))
@example(Shape("<dt>", "e-mail html", "hubblehq"))
@example(Shape("<a x", "e-mail html", "kontor"))
@example(Shape('"', "e-mail sender", "hubblehq"))
@example(Shape("re ", "e-mail subject", "workthere"))
@example(Shape("=?x?q?=E9?= ", "e-mail sender", "kontor"))  # encoded words in a charset Python lacks
@example(Shape("hubblehq.com/listings/1", "e-mail text", "hubblehq"))
@example(Shape("a", "webhook keys", "liquidspace"))
@example(Shape("a@", "webhook values", "hubblehq"))
def test_parsing_time_grows_linearly_with_hostile_input(shape: Shape) -> None:
    small, large = shape.run(SIZE), shape.run(4 * SIZE)
    fast, slow = _seconds(small), _seconds(large)
    assert slow <= GROWTH * max(fast, FLOOR), (
        f"{shape}: {fast * 1000:.1f} ms at {SIZE:,} characters, {slow * 1000:.1f} ms at {4 * SIZE:,}"
    )
