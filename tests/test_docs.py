"""README.md and docs/: every relative link leads to a file, and every #anchor to a heading there.

Also what CI relies on: the README names the test command CI calls, and stays an operator's page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)  # no headings inside code
    headings = re.findall(r"^#{1,6} (.+)$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-") for heading in headings}


def links(markdown: str) -> list[str]:
    text = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    return [target for target in LINK.findall(text) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    for target in links(page.read_text()):
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve() if path else page
        assert found.exists(), f"{page.name}: {target} — no such file"
        if anchor:
            assert found.suffix == ".md", f"{page.name}: {target} — an anchor into a non-page"
            assert anchor in anchors(found.read_text()), f"{page.name}: {target} — no such heading"


def quick_start(readme: str) -> list[str]:
    """The two commands of the README's quick start (its first bash block)."""
    block = readme.split("## Quick start", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return block.strip().splitlines()


def test_the_readme_names_the_test_command_ci_calls_and_stays_short() -> None:
    readme = (REPO / "README.md").read_text()
    assert "the test command is `python -m pytest`" in readme
    first, second = quick_start(readme)
    assert first.endswith("leadrelay demo") and second == "bash .ci/run"
    assert (REPO / "bin" / "setup").exists()
    fresh = (REPO / ".ci" / "fresh-machine").read_text()  # what the fresh-machine check runs
    assert f'CMD1="${{FRESH_CMD1:-{first}}}"' in fresh
    assert f'CMD2="${{FRESH_CMD2:-{second}}}"' in fresh
    assert len(readme.splitlines()) <= 200
    assert "```mermaid" in readme
