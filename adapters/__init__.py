"""Channel adapters: one module per portal, pure functions from raw item to lead.

The public surface is re-exported here; see :mod:`adapters.base` for the
exception hierarchy.
"""

from leadrelay.adapters.base import Adapter, AdapterError, NotALead, ParseContext, ParseError, RawItem, finish
from leadrelay.adapters.registry import ADAPTERS, UnknownAdapterError, adapter_for, context_for, get_adapter

__all__ = [
    "ADAPTERS",
    "Adapter",
    "AdapterError",
    "NotALead",
    "ParseContext",
    "ParseError",
    "RawItem",
    "UnknownAdapterError",
    "adapter_for",
    "context_for",
    "finish",
    "get_adapter",
]
