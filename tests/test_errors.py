"""Every exception leadrelay defines has one root, LeadRelayError, through one of its kinds."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import leadrelay
from leadrelay import errors
from leadrelay.errors import LeadRelayError

KINDS = (errors.NotFound, errors.Refused, errors.InputError, errors.ConfigurationError, errors.UpstreamError)
SKIPPED = (".migrations", ".__main__")  # alembic's scripts (no exceptions); running the CLI


def defined_exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(leadrelay.__path__, "leadrelay."):
        if any(part in info.name for part in SKIPPED):
            continue
        module = importlib.import_module(info.name)
        for obj in vars(module).values():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_in_the_package_derives_from_leadrelay_error() -> None:
    found = defined_exceptions()
    assert len(found) > 20  # the walk reached the worker, the adapters, the API and the sandbox
    assert "leadrelay.worker.dead_letters.ActionRefused" in found
    assert "leadrelay.adapters.base.ParseError" in found
    outside = sorted(name for name, cls in found.items() if not issubclass(cls, LeadRelayError))
    assert outside == []
    rootless = sorted(name for name, cls in found.items() if cls not in KINDS and not issubclass(cls, KINDS))
    assert rootless == ["leadrelay.errors.LeadRelayError"]


def test_built_in_bases_stay_for_the_callers_that_catch_them() -> None:
    from leadrelay.adapters.registry import UnknownAdapterError
    from leadrelay.sandbox.state import TenantExists, UnknownTenant
    from leadrelay.secret_files import SecretFileError

    assert issubclass(UnknownAdapterError, KeyError)
    assert issubclass(UnknownTenant, KeyError)
    assert issubclass(TenantExists, ValueError)
    assert issubclass(SecretFileError, ValueError)
    assert str(UnknownAdapterError("no adapter named 'x'")) == "no adapter named 'x'"


def test_a_missing_dead_letter_is_both_not_found_and_a_refusal() -> None:
    from leadrelay.worker.dead_letters import ActionRefused, NotFound

    assert issubclass(NotFound, ActionRefused)
    assert issubclass(NotFound, errors.NotFound)
    assert issubclass(NotFound, errors.Refused)
