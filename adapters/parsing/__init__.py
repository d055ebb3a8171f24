"""Tolerant readers for the loose human strings portals send (money, desks, dates, labels).

Every function here takes text and returns a typed value or ``None``; none of them
raises on bad input, so adapters can try them freely.
"""
