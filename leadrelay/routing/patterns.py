"""Regular expressions an operator writes into the routing file: refused when they can hang."""

from __future__ import annotations

# the parser re.compile uses; private, so typeshed has no stubs for it (only the deprecated sre_* aliases)
from re import _constants as sre_constants  # type: ignore[attr-defined]
from re import _parser as sre_parser  # type: ignore[attr-defined]
from typing import Any


def nested_repeat(pattern: str) -> bool:
    """An unbounded repetition inside another (``(a+)+``, ``(\\w*\\s)*``): backtracking blows up.

    "Star height" above one, the rule safe-regex linters use, read with the stdlib's
    own pattern parser (``re._parser``, private but what ``re.compile`` itself uses).
    Overlapping alternatives under one repetition (``(a|a)+``) are not caught: this
    catches the common mistake, not every one.
    """
    return _star_height(sre_parser.parse(pattern)) > 1


def _star_height(items: Any) -> int:
    """How deeply unbounded repetitions nest in a parsed pattern."""
    height = 0
    for op, arg in items:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            _, most, body = arg
            height = max(height, _star_height(body) + (most == sre_constants.MAXREPEAT))
        elif op is sre_constants.SUBPATTERN:
            height = max(height, _star_height(arg[-1]))
        elif op is sre_constants.BRANCH:
            height = max(height, *(_star_height(branch) for branch in arg[1]))
    return height
