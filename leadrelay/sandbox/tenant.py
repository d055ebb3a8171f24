"""One Nexudus account in the sandbox: its records, indexes, counters and request windows."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field

from leadrelay.sandbox.envelopes import Record, iso_utc
from leadrelay.sandbox.limits import RateLimiter
from leadrelay.sandbox.options import TenantSpec

BUSINESSES = "businesses"
BOARDS = "crmboards"
COLUMNS = "crmboardcolumns"
COWORKERS = "coworkers"
OPPORTUNITIES = "crmopportunities"
COUNTRIES = "countries"
TIME_ZONES = "simpletimezones"
FIRST_IDS = {
    COWORKERS: 100_001,
    OPPORTUNITIES: 500_001,
    BUSINESSES: 9_001,
    BOARDS: 9_501,
    COLUMNS: 9_801,
    COUNTRIES: 901,
    TIME_ZONES: 951,
}


@dataclass
class Counters:
    requests: int = 0  # authenticated API requests received, throttled ones included
    writes: int = 0  # of which POST/PUT/DELETE
    throttled: int = 0  # answers 409/429 sent (the limiter's and injected ones)
    faults_fired: int = 0
    soft_failures: int = 0  # writes answered 200 WasSuccessful:false by the quirk
    welcome_emails: int = 0  # coworkers created with CreateUser: true
    default_business_landings: int = 0  # coworkers created without InvoicingBusinessId or Businesses

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(eq=False)
class Tenant:
    """Mutated only with the sandbox state's lock held; stored records are never changed in place."""

    spec: TenantSpec
    tables: dict[str, dict[int, Record]] = field(default_factory=lambda: {name: {} for name in FIRST_IDS})
    next_ids: dict[str, int] = field(default_factory=lambda: dict(FIRST_IDS))
    default_business_id: int | None = None
    email_index: dict[str, int] = field(default_factory=dict)  # lower-cased Email -> coworker Id
    opportunity_location: dict[int, int] = field(default_factory=dict)  # opportunity Id -> business Id
    location_counts: Counter[int] = field(default_factory=Counter)
    welcome_emails: list[Record] = field(default_factory=list)
    counters: Counters = field(default_factory=Counters)
    limiter: RateLimiter = field(default_factory=RateLimiter)

    @property
    def username(self) -> str:
        return self.spec.username

    def insert(self, table: str, fields: Record, record_id: int | None = None) -> Record:
        """Store a new record with its server fields (a fresh Id unless one is given)."""
        if record_id is None:
            record_id = self.next_ids[table]
        self.next_ids[table] = max(self.next_ids[table], record_id + 1)
        now = iso_utc()
        record = {"Id": record_id, **fields}  # Id first, as Nexudus lists it
        record.update(Id=record_id, UniqueId=str(uuid.uuid4()), CreatedOn=now, UpdatedOn=now)
        self.tables[table][record_id] = record
        return record

    def replace(self, table: str, previous: Record, fields: Record) -> Record:
        """Store ``fields`` as the new version of ``previous`` (a full replacement, as Nexudus PUT)."""
        record = {"Id": previous["Id"], **fields}
        kept = {key: previous[key] for key in ("Id", "UniqueId", "CreatedOn")}
        record.update(kept, UpdatedOn=iso_utc())
        self.tables[table][record["Id"]] = record
        return record

    def business_of_column(self, column_id: int) -> int | None:
        column = self.tables[COLUMNS].get(column_id)
        board = self.tables[BOARDS].get(column["CrmBoardId"]) if column else None
        return board["BusinessId"] if board else None
