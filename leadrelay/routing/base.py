"""What every part of the routing file shares: its error, and strict, frozen models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from leadrelay.errors import ConfigurationError


class RoutingError(ConfigurationError):
    """The routing file is unusable; ``problems`` lists ``key: what is wrong``."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
