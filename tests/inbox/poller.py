"""One poll pass in a process of its own, for the tests that kill the poller.

``python -m tests.inbox.poller INBOX [--crash-before-mark]`` — the ledger and the
routing file come from the environment (LEADRELAY_DATABASE_URL, LEADRELAY_CONFIG).
With ``--crash-before-mark`` the process SIGKILLs itself at the worst moment: the
first batch is committed to the ledger and not yet marked in the mailbox.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from leadrelay.runtime import Runtime
from leadrelay.worker.imap.poll import RetryPolicy, poll_inbox
from leadrelay.worker.imap.session import ImapSession


def _die(*_args: object, **_kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("inbox")
    parser.add_argument("--crash-before-mark", action="store_true")
    args = parser.parse_args()
    if args.crash_before_mark:
        ImapSession.mark_seen = _die  # type: ignore[method-assign]
        ImapSession.move = _die  # type: ignore[method-assign]
    runtime = Runtime.load()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    retry = RetryPolicy(attempts=2, first_delay=0.05, max_delay=0.1)
    report = poll_inbox(runtime, args.inbox, enqueue=len, retry=retry)
    sys.stdout.write(json.dumps(report.summary()) + "\n")


if __name__ == "__main__":
    main()
