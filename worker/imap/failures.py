"""Socket, TLS and protocol failures of an imaplib call, as an :class:`InboxError` that says
what to fix and whether another try may help."""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Callable
from typing import TypeVar

from leadrelay.routing import InboxConfig
from leadrelay.worker.imap.errors import InboxError, Kind

T = TypeVar("T")


def guarded(
    config: InboxConfig, where: str, what: str, command: Callable[[], T], *, refused: str | None = None
) -> T:
    """Run an imaplib call, turning socket and protocol failures into an InboxError.

    A NO to a command imaplib raises for (LOGIN, AUTHENTICATE) is ``refused`` — final
    — when given; otherwise a server error, worth another try.
    """
    address = f"{config.host}:{config.port}"
    kind: Kind = "network"
    try:
        return command()
    except TimeoutError:
        reason, retryable = f"{address} did not answer {what} within {config.timeout_seconds:g}s", True
        kind = "timeout"
    except ssl.SSLCertVerificationError as exc:
        reason = f"the TLS certificate of {address} is not trusted ({exc.verify_message})"
        reason, retryable = f"{reason}: check {where}.host, or name a CA bundle in {where}.ca_file", False
        kind = "tls"
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError):
        reason, retryable = f"{address} closed the TLS connection during {what}", True
    except ssl.SSLError as exc:
        reason = f"TLS with {address} failed ({exc.reason}): does the port speak IMAPS (tls: true, 993)"
        reason, retryable = f"{reason} or plain IMAP with STARTTLS (starttls: true, 143)?", False
        kind = "tls"
    except socket.gaierror:
        reason, retryable = f"cannot resolve {config.host}: check {where}.host", True
    except ConnectionRefusedError:
        reason, retryable = f"{address} refused the connection: check {where}.host and port", True
    except imaplib.IMAP4.abort as exc:
        reason, retryable = f"the connection to {address} broke during {what} ({_short(exc)})", True
    except imaplib.IMAP4.error as exc:
        if refused is not None:
            reason, retryable = f"the server refused the {what} ({_short(exc)}): {refused}", False
            kind = "auth"
        else:
            reason, retryable, kind = f"the server rejected {what} ({_short(exc)})", True, "server"
    except (OSError, EOFError) as exc:
        reason, retryable = f"the connection to {address} broke during {what} ({type(exc).__name__})", True
    raise InboxError(reason, retryable=retryable, kind=kind)


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:160]
