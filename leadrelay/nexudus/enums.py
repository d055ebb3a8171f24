"""Nexudus enumerations leadrelay uses (NEXUDUS.md, "Enums")."""

from enum import IntEnum


class LeadSource(IntEnum):
    Web = 1
    Phone = 2
    Webinar = 4
    Referral = 5
    PrintAdvert = 6
    PurchasedList = 7
    WordOfMouth = 8
    DirectEmail = 9
    EmailMarketing = 10
    Broker = 11
    PropertyAgent = 12
    Facebook = 13
    Linkedin = 14
    Instagram = 15
    Twitter = 16
    HubbleHq = 17
    LiquidSpace = 18
    GoogleSearch = 19
    SpacePool = 20
    InstantOffices = 21
    OfficeFreedom = 22
    FlexiOffices = 23
    Workthere = 24
    Kontor = 25
    Valve = 26
    OtherSocialNetwork = 98
    Other = 99


class OpportunityStatus(IntEnum):
    InProgress = 1
    Won = 2
    Lost = 3


class LossReason(IntEnum):
    Timing = 1
    Need = 2
    PoorQualification = 3
    Price = 4
    Feature = 5
    LostMomentum = 6
    Competition = 7
    ContractTerm = 8
    Duplicate = 9
    Waitlist = 10
    NotReturningCalls = 11
    LackOfFacilities = 12
    NoPetPolicy = 13
    NoRightFit = 14
    Location = 15
    Entrance = 16
    Errors = 17
    Archived = 18
    SearchOnHold = 19
    RelocationOnHold = 20
    Other = 99
