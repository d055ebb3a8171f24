"""What the staff tests share: many distinct canonical leads put in the ledger at once."""

from __future__ import annotations

from leadrelay.testing.ledger import record_canonical
from tests.helpers import canonical


def clients(url: str, count: int, *, tag: str) -> list[int]:
    """``count`` canonical webhooks of distinct clients in the ledger at ``url``: their lead ids."""
    return record_canonical(
        url,
        (
            canonical(
                external_id=f"{tag}-{n}",
                contact={"full_name": f"Client {n}", "email": f"client{n}@{tag}{n % 11}.example"},
            )
            for n in range(count)
        ),
        prefix=tag,
    )
