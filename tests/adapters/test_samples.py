"""Every shared sample normalises to the key fields in expected.json (the portals' contract)."""

from __future__ import annotations

import filecmp
import json
from collections import defaultdict

import pytest

from leadrelay.adapters.registry import ADAPTERS
from tests.adapters.support import SAMPLES, SHARED_SAMPLES, Case, cases, mismatches, parse

SAMPLE_CASES = cases(SAMPLES)


@pytest.mark.parametrize("case", SAMPLE_CASES, ids=lambda c: c.key)
def test_sample_normalises_to_expected_fields(case: Case) -> None:
    assert case.expected, f"{case.key} has no entry in expected.json"
    assert mismatches(parse(case), case.expected) == {}


def test_every_expected_entry_has_a_sample() -> None:
    listed = {k for k in json.loads((SAMPLES / "expected.json").read_text("utf-8")) if not k.startswith("_")}
    assert listed == {c.key for c in SAMPLE_CASES}


def test_every_registered_channel_has_samples() -> None:
    channels = {c.channel for c in SAMPLE_CASES}
    assert set(ADAPTERS) <= channels, f"no samples for {sorted(set(ADAPTERS) - channels)}"


def test_portal_channels_have_a_webhook_and_an_email_sample() -> None:
    doors: dict[str, set[str]] = defaultdict(set)
    for case in SAMPLE_CASES:
        doors[case.channel].add(case.path.suffix)
    for channel in set(ADAPTERS) - {"canonical"}:
        assert doors[channel] == {".json", ".eml"}, channel


def test_webhook_and_email_about_one_enquiry_share_the_portal_reference() -> None:
    references: dict[str, set[str | None]] = defaultdict(set)
    for case in SAMPLE_CASES:
        references[case.expected["external_id"]].add(parse(case).external_id)
    for reference in ("enq_8F2KQ7XW", "enq_3JD90PLA", "771245", "WT-2026-004417", "ktr_5c9e21"):
        assert references[reference] == {reference}


@pytest.mark.skipif(not SHARED_SAMPLES.is_dir(), reason="no ../shared beside the repo (a clean clone)")
def test_in_repo_copy_matches_shared_samples() -> None:
    comparison = filecmp.dircmp(SHARED_SAMPLES, SAMPLES)
    stale: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        stale.extend(f"{prefix}{name}" for name in (*cmp.left_only, *cmp.right_only, *cmp.diff_files))
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(comparison, "")
    for case in SAMPLE_CASES:
        shared = SHARED_SAMPLES / case.key
        if shared.read_bytes() != case.path.read_bytes():
            stale.append(case.key)
    assert stale == [], "tests/fixtures/samples differs from ../shared/samples: copy them again"
