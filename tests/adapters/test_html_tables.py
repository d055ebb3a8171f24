"""HTML-only notifications laid out as tables: however the cells pair up, each label
meets its own value."""

from __future__ import annotations

from leadrelay.adapters.mail.html import html_to_text
from leadrelay.adapters.mail.pairs import pairs_in

LABELS = frozenset(("name", "email", "desks", "phone", "listing"))


def _known(label: str) -> bool:
    return label.lower() in LABELS


def _pairs(html: str) -> list[tuple[str, str]]:
    text, _ = html_to_text(html)
    return [(pair.label, pair.value) for pair in pairs_in(text, _known)]


def test_two_pairs_side_by_side_in_a_row_are_two_pairs() -> None:
    html = (
        "<table><tr><td>Name</td><td>Jo Bloggs</td><td>Desks</td><td>8</td></tr>"
        "<tr><th>Email</th><td>jo@x.example</td><th>Phone:</th><td>07700 900123</td></tr></table>"
    )
    assert _pairs(html) == [
        ("Name", "Jo Bloggs"),
        ("Desks", "8"),
        ("Email", "jo@x.example"),
        ("Phone", "07700 900123"),
    ]


def test_a_header_row_of_labels_over_one_row_of_values_is_read_by_column() -> None:
    html = (
        "<table><thead><tr><th>Name</th><th>Email</th><th>Desks</th></tr></thead>"
        "<tbody><tr><td>Jo Bloggs</td><td>jo@x.example</td><td>8</td></tr></tbody></table>"
    )
    assert _pairs(html) == [("Name", "Jo Bloggs"), ("Email", "jo@x.example"), ("Desks", "8")]


def test_a_value_spread_over_cells_stays_one_value() -> None:
    html = "<table><tr><td>Listing</td><td>The Foundry</td><td>Old Street</td><td>#48213</td></tr></table>"
    assert _pairs(html) == [("Listing", "The Foundry Old Street #48213")]


def test_a_header_row_over_several_rows_is_left_as_rows() -> None:
    """Several rows under one header is a list (a digest), not one lead's fields."""
    html = (
        "<table><tr><th>Name</th><th>Email</th></tr><tr><td>Jo</td><td>jo@x.example</td></tr>"
        "<tr><td>Al</td><td>al@x.example</td></tr></table>"
    )
    pairs = _pairs(html)
    assert ("Name", "Jo") not in pairs and ("Email", "jo@x.example") not in pairs


def test_definition_lists_and_bold_labels_read_like_label_lines() -> None:
    html = (
        "<p><b>Name:</b> Jo Bloggs<br><strong>Desks</strong>: 8</p>"
        "<dl><dt>Email</dt><dd>jo@x.example</dd></dl>"
    )
    assert _pairs(html) == [("Name", "Jo Bloggs"), ("Desks", "8"), ("Email", "jo@x.example")]
