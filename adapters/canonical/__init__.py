"""The generic channel: the body *is* a CanonicalLead (Zapier, Make, any partner)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import ClassVar, get_args

from pydantic import BaseModel

from leadrelay.adapters.base import NotALead, ParseContext, RawItem, finish
from leadrelay.adapters.from_webhook import json_object
from leadrelay.canonical import CanonicalLead


def _paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, info in model.model_fields.items():
        types = (info.annotation, *get_args(info.annotation))
        nested = [t for t in types if isinstance(t, type) and issubclass(t, BaseModel)]
        yield f"{prefix}{name}"  # a part too: ``"desks": 4`` stands for a whole range
        if nested:
            yield from _paths(nested[0], f"{prefix}{name}.")


class CanonicalAdapter:
    name = "canonical"
    lead_source = 11
    country = "GB"
    senders: tuple[str, ...] = ()
    # the body is the model: its own field paths are the shape channel detection looks for
    json_paths: ClassVar[Mapping[str, tuple[str, ...]]] = {path: (path,) for path in _paths(CanonicalLead)}

    def parse(self, item: RawItem, ctx: ParseContext) -> CanonicalLead:
        if item.kind != "webhook":
            raise NotALead("the canonical channel takes JSON webhooks only, not e-mail")
        data = json_object(item.body)
        return finish(data, ctx)


ADAPTER = CanonicalAdapter()
