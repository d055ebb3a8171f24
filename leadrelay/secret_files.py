"""Secrets kept in files (Docker and Kubernetes secrets, systemd credentials).

Every secret setting has a ``*_file`` twin (``LEADRELAY_ADMIN_TOKEN_FILE``,
``password_file`` in the routing file): the file holds the value alone, and a
trailing newline is not part of it.
"""

from __future__ import annotations

from pathlib import Path

from leadrelay.errors import ConfigurationError


class SecretFileError(ConfigurationError, ValueError):
    """A named secret file cannot be used; the message says which and why (never its content)."""


def read_secret_file(path: Path | str, *, where: str) -> str:
    try:
        value = Path(path).read_text("utf-8").strip()
    except OSError as err:
        raise SecretFileError(f"{where}: cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise SecretFileError(f"{where}: {path} is not UTF-8 text") from None
    if not value:
        raise SecretFileError(f"{where}: {path} is empty")
    return value
