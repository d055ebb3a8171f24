"""The demo data of every seeded tenant, matching ``leadrelay/default_routing.yaml``."""

from __future__ import annotations

from leadrelay.sandbox.resources import COWORKERS
from leadrelay.sandbox.tenant import BOARDS, BUSINESSES, COLUMNS, COUNTRIES, TIME_ZONES, Tenant

LOCATIONS = (
    # business, name, town, country id, time zone id, board
    (1001, "The Foundry", "London", 1, 52, 1501),
    (1002, "Mission Hub", "San Francisco", 2, 12, 1502),
    (1003, "Spree Space", "Berlin", 3, 31, 1503),
)
# Stage columns of location n (1, 2, 3) have the id base + n: 2001 is The Foundry's "New enquiry".
STAGES = (
    (2000, "New enquiry", False, False),
    (2100, "Viewing booked", False, False),
    (2200, "Won", True, False),
    (2300, "Lost", False, True),
)
COUNTRY_LIST = (  # id, ISO code, name (the ids the seeded locations and the demo routing use)
    (1, "GB", "United Kingdom"),
    (2, "US", "United States"),
    (3, "DE", "Germany"),
    (4, "FR", "France"),
    (5, "ES", "Spain"),
    (6, "NL", "Netherlands"),
    (7, "IE", "Ireland"),
)
TIME_ZONE_LIST = (  # id, name
    (12, "Pacific Standard Time"),
    (20, "Eastern Standard Time"),
    (31, "W. Europe Standard Time"),
    (33, "Romance Standard Time"),
    (52, "GMT Standard Time"),
)
BROKERS = (
    (3001, "HubbleHq", "hubblehq"),
    (3002, "LiquidSpace", "liquidspace"),
    (3003, "Workthere", "workthere"),
    (3004, "Acme Office Search", "acme"),
    (3005, "Kontor", "kontor"),
)


def seed(tenant: Tenant) -> None:
    """Three locations, a board each with four stages, and five broker coworkers (``AgentId``)."""
    for country_id, code, country in COUNTRY_LIST:
        tenant.insert(COUNTRIES, {"Name": country, "TwoLetterCode": code}, country_id)
    for zone_id, zone in TIME_ZONE_LIST:
        tenant.insert(TIME_ZONES, {"Name": zone, "DisplayName": zone}, zone_id)
    for index, (business_id, name, town, country_id, timezone_id, board_id) in enumerate(LOCATIONS, 1):
        business = {"Name": name, "TownCity": town, "CountryId": country_id, "SimpleTimeZoneId": timezone_id}
        tenant.insert(BUSINESSES, business, business_id)
        tenant.insert(BOARDS, {"BusinessId": business_id, "Name": f"Leads - {name}"}, board_id)
        for position, (base, stage, wins, loses) in enumerate(STAGES, 1):
            column = {"CrmBoardId": board_id, "Name": stage, "Position": position}
            column |= {"WinOpportunity": wins, "LoseOpportunity": loses}
            tenant.insert(COLUMNS, column, base + index)
    location_ids = [location[0] for location in LOCATIONS]
    tenant.default_business_id = location_ids[0]
    for coworker_id, name, slug in BROKERS:
        broker = {
            "FullName": f"{name} (broker)",
            "Email": f"brokers+{slug}@sandbox.example",
            "CoworkerType": 2,
            "CountryId": 1,
            "SimpleTimeZoneId": 52,
            "InvoicingBusinessId": location_ids[0],
            "Businesses": location_ids,
            "CreateUser": False,
        }
        COWORKERS.indexed(tenant, None, tenant.insert(COWORKERS.table, broker, coworker_id))
