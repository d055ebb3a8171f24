"""Reading the routing file (or the embedded default) and reporting every problem by its key."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from leadrelay.routing.base import RoutingError
from leadrelay.routing.model import Routing

EMBEDDED_ROUTING = "default_routing.yaml"


def _format(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"])
        message = str(e["msg"]).removeprefix("Value error, ")
        for line in message.splitlines():
            problems.append(f"{where}: {line}" if where and not line.startswith(where) else line)
    return problems


def parse_routing(data: Any, source: str) -> Routing:
    if not isinstance(data, dict):
        raise RoutingError(source, ["the file must be a YAML mapping with accounts, locations, channels"])
    try:
        return Routing.model_validate(data)
    except ValidationError as err:
        raise RoutingError(source, _format(err)) from None


def load_routing(path: Path | None) -> Routing:
    """Read and validate the routing file, or the embedded default when ``path`` is None."""
    if path is None:
        text = resources.files("leadrelay").joinpath(EMBEDDED_ROUTING).read_text("utf-8")
        source = f"embedded {EMBEDDED_ROUTING}"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as err:
            raise RoutingError(str(path), [f"cannot read the routing file: {err.strerror}"]) from None
        source = str(path)
    return parse_routing_text(text, source)


def parse_routing_text(text: str, source: str) -> Routing:
    """A routing file's text, read and validated whole (every problem by its key)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RoutingError(source, [f"not valid YAML: {err}"]) from None
    return parse_routing(data, source)
