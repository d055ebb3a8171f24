"""A lead read back from the ledger (CanonicalLead.from_ledger) is the lead that was written."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadrelay.canonical import CanonicalLead, normalise_phone

# national numbers as portals send them, with the listing's region they are read in
NATIONAL = [
    ("07700 900123", "GB"),
    ("020 7946 0958", "GB"),
    ("06 12 34 56 78", "FR"),
    ("030 901820", "DE"),
    ("(212) 555-0199", "US"),
    ("0412 345 678", "AU"),
    ("0049 30 901820", "GB"),
]


def _read(phone: str, region: str) -> CanonicalLead:
    draft = {"contact": {"full_name": "Ledger Person", "phone": phone}}
    return CanonicalLead.model_validate(draft, context={"region": region})


def test_an_e164_phone_parsed_again_is_the_same_in_every_region() -> None:
    """The shortcut's premise: what the validator wrote, parsed again, gives the same string back."""
    seen = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is None:
                continue
            e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
            assert normalise_phone(e164, None) == e164, region
            assert normalise_phone(e164, "FR", "DE") == e164, region
            seen += 1
    assert seen > 400  # mobile and fixed-line examples of some 240 regions


@given(st.sampled_from(NATIONAL), st.sampled_from(["GB", "FR", "US", None]))
def test_a_lead_written_to_the_ledger_reads_back_the_same(number: tuple[str, str], other: str | None) -> None:
    lead = _read(*number)
    assert lead.contact.phone is not None and lead.contact.phone.startswith("+")
    stored = lead.to_json_dict()
    assert CanonicalLead.from_ledger(stored) == lead
    # the region it was read in does not matter any more: the phone is E.164
    assert CanonicalLead.model_validate(stored, context={"region": other}) == lead


def test_an_e164_phone_from_the_ledger_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = _read("07700 900123", "GB").to_json_dict()
    parsed: list[str] = []
    real = phonenumbers.parse

    def counted(number: str, region: str | None = None, *args: object, **kwargs: object) -> object:
        parsed.append(number)
        return real(number, region, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(phonenumbers, "parse", counted)
    assert CanonicalLead.from_ledger(stored).contact.phone == "+447700900123"
    assert parsed == []
    assert CanonicalLead.model_validate(stored).contact.phone == "+447700900123"
    assert parsed == ["+447700900123"]  # a lead from anywhere else is parsed, as ever


def test_a_phone_the_ledger_kept_in_another_shape_is_read_as_ever() -> None:
    """Rows written before phones were E.164, or edited by hand: parsed as an adapter's would be."""
    stored = {"contact": {"full_name": "Old Row", "phone": "07700 900123"}}
    assert CanonicalLead.from_ledger(stored).contact.phone == "+447700900123"  # the default region, GB
    unusable = {"contact": {"full_name": "Old Row", "email": "old.row@example.org", "phone": "+44 12"}}
    assert CanonicalLead.from_ledger(unusable).contact.phone is None


def test_an_e164_phone_the_numbering_plan_now_calls_impossible_is_kept_as_stored() -> None:
    """Stored when phonenumbers' metadata allowed it (or by hand): kept, as the lead's identity is of it."""
    stored = {"contact": {"full_name": "Kept Row", "email": "kept.row@example.org", "phone": "+999123456789"}}
    assert normalise_phone("+999123456789", None) is None  # no such country code: read today, dropped
    assert CanonicalLead.from_ledger(stored).contact.phone == "+999123456789"
