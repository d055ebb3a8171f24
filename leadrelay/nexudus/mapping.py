"""The configurable parts of an opportunity (``leadrelay.routing.mapping``) applied: pure functions.

``Value`` is kept in the location's currency: a budget in another one is converted
with the configured table, and the note says what it was; with no rate for it the
Value is left for staff to set rather than written in the wrong currency.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadrelay.canonical import CanonicalLead
from leadrelay.routing.mapping import Mapping


@dataclass(frozen=True, slots=True)
class Valued:
    amount: float | None  # the Value to write (None: none)
    note: str | None  # a line for the Notes when the amount is not the budget's own


def _money(currency: str, amount: float) -> str:
    shown = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    return f"{currency} {shown}"


def value_in_currency(amount: float, currency: str | None, mapping: Mapping) -> Valued:
    """``amount`` (in ``currency``, the budget's) as the Value of the location's currency."""
    target = mapping.currency
    if target is None or currency is None or currency == target:
        return Valued(amount, None)
    rates = mapping.currency_rates
    if currency not in rates or target not in rates:
        return Valued(
            None,
            f"Value not set: {_money(currency, amount)} expected, and no rate from {currency} to "
            f"{target} is configured (currency_rates)",
        )
    rate = rates[currency] / rates[target]
    converted = round(amount * rate, 2)
    return Valued(
        converted, f"Value: {_money(target, converted)}, from {_money(currency, amount)} at {rate:.4g}"
    )


def opportunity_name(
    template: str, lead: CanonicalLead, *, label: str, reference: str, channel: str, location: str
) -> str:
    """The Name of a lead's opportunity, from the configured template (checked when loaded)."""
    return template.format(
        label=label,
        reference=reference,
        channel=channel,
        location=location,
        kind=lead.kind.value.replace("_", " "),
        listing=lead.listing.name or lead.listing.id or "",
    ).strip()
