"""A real Dovecot IMAP server for the tests and the bench, from a throwaway config on loopback ports.

Plain IMAP (with STARTTLS) and IMAPS with a self-signed certificate; passwd-file
users with ``{PLAIN}`` passwords; an ``oauth2`` passdb for XOAUTH2 pointed at a
local introspection endpoint; a second address (127.0.0.2) whose CAPABILITY
leaves out MOVE, for the COPY + EXPUNGE fallback.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from leadrelay.children import free_port

USERS = {"leads": "leads-secret", "team": "team-secret"}
MX = "mx.leadrelay.test"  # the authserv-id of the mail server that "received" the test mail
_FROM = re.compile(rb"(?im)^from:[^\r\n]*?@([a-z0-9.-]+)")


def received(raw: bytes, *, authenticated: bool | None = True) -> bytes:
    """The mail as a receiving server files it: its Authentication-Results on top.

    ``authenticated``: the sender's domain passed DMARC, as a portal's genuine mail
    does; False: the server found no authentication (a spoof, an unsigned sender);
    None: a server that writes no Authentication-Results (the mail as it was sent).
    """
    if authenticated is None or raw.startswith(f"Authentication-Results: {MX};".encode()):  # filed once
        return raw
    found = _FROM.search(raw[: raw.find(b"\n\n") if b"\n\n" in raw else 65536])
    domain = found.group(1).decode() if found else "unknown.invalid"
    said = (
        f"dkim=pass header.d={domain}; dmarc=pass header.from={domain}"
        if authenticated
        else f"spf=none smtp.mailfrom={domain}; dkim=none; dmarc=fail header.from={domain}"
    )
    newline = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    return f"Authentication-Results: {MX}; {said}".encode() + newline + raw


NO_MOVE_HOST = "127.0.0.2"  # the same server, announcing no MOVE capability
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"

_CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
instance_name = leadrelay-test-{imap_port}
protocols = imap
listen = 127.0.0.1, {no_move}
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
auth_failure_delay = 0
mail_location = maildir:~/Maildir
{unprivileged}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1, {no_move}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # no growing delays after failed logins (the tests fail some on purpose)
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
local {no_move} {{
  protocol imap {{
    imap_capability = IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE NAMESPACE UIDPLUS CHILDREN
  }}
}}
"""

_OAUTH2 = """\
introspection_mode = post
introspection_url = {introspection_url}
username_attribute = username
active_attribute = active
active_value = true
"""

# running as a normal user: every Dovecot process runs as that user, without chroots
_UNPRIVILEGED = """\
default_internal_user = {user}
default_login_user = {user}
service imap-login {{
  chroot =
}}
"""


def _mail_owner() -> tuple[int, int]:
    """Dovecot refuses uid 0 for mail ("userdb returned 0 as uid"): use nobody when root."""
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid


def _self_signed(cert: Path, key: Path) -> None:
    subject = ["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *subject,
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip


def _wait_listening(port: int, *, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"Dovecot did not listen on {port}")


@dataclass
class Dovecot:
    root: Path
    imap_port: int
    imaps_port: int

    @property
    def config(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def ca_file(self) -> Path:
        return self.root / "cert.pem"

    @classmethod
    def start(cls, *, introspection_url: str) -> Dovecot:
        root = Path(tempfile.mkdtemp(prefix="leadrelay-dovecot-"))
        root.chmod(0o755)  # the mail user (nobody) must reach its home below
        server = cls(root=root, imap_port=free_port(), imaps_port=free_port())
        uid, gid = _mail_owner()
        (root / "home").mkdir()
        os.chown(root / "home", uid, gid)
        (root / "state").mkdir()
        (root / "passwd").write_text("".join(f"{u}:{{PLAIN}}{p}::::::\n" for u, p in USERS.items()))
        (root / "oauth2.conf.ext").write_text(_OAUTH2.format(introspection_url=introspection_url))
        _self_signed(root / "cert.pem", root / "key.pem")
        unprivileged = "" if os.geteuid() == 0 else _UNPRIVILEGED.format(user=pwd.getpwuid(uid).pw_name)
        server.config.write_text(
            _CONFIG.format(
                root=root,
                imap_port=server.imap_port,
                imaps_port=server.imaps_port,
                no_move=NO_MOVE_HOST,
                uid=uid,
                gid=gid,
                unprivileged=unprivileged,
            )
        )
        # Dovecot daemonises and keeps inherited pipes open: give it none
        subprocess.run(
            [DOVECOT, "-c", str(server.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=30,
        )
        _wait_listening(server.imap_port)
        _wait_listening(server.imaps_port)
        return server

    def stop(self) -> None:
        # what `dovecot stop` sends, without its seconds of waiting: the processes wind down alone
        pid_file = self.root / "run" / "master.pid"
        if pid_file.exists():  # else already stopped (a test that stops its server on purpose)
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        return (self.root / "dovecot.log").read_text(errors="replace")

    def doveadm(self, *args: str) -> str:
        result = subprocess.run(
            [DOVEADM, "-c", str(self.config), *args], capture_output=True, text=True, timeout=30
        )
        if result.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def client(self, user: str = "leads") -> MailboxClient:
        imap = imaplib.IMAP4("127.0.0.1", self.imap_port, timeout=10)
        imap.login(user, USERS[user])
        return MailboxClient(self, user, imap)

    def deliver(
        self, folder: str, *mails: bytes, user: str = "leads", authenticated: bool | None = True
    ) -> None:
        with self.client(user) as client:
            for raw in mails:
                client.append(folder, raw, authenticated=authenticated)

    def message_ids(self, folder: str, *, seen: bool, user: str = "leads") -> set[str]:
        with self.client(user) as client:
            return client.message_ids(folder, seen=seen)

    def count(self, folder: str, *, user: str = "leads") -> int:
        with self.client(user) as client:
            return client.count(folder)


class MailboxClient:
    """What a person or a mail server does to a mailbox: deliver, file, read, reset."""

    def __init__(self, server: Dovecot, user: str, imap: imaplib.IMAP4) -> None:
        self.server = server
        self.user = user
        self.imap = imap

    def __enter__(self) -> MailboxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.imap.logout()

    def create(self, folder: str) -> None:
        typ, data = self.imap.create(folder)
        assert typ == "OK", data

    def append(
        self, folder: str, raw: bytes, *, seen: bool = False, authenticated: bool | None = True
    ) -> None:
        """``raw`` filed as its receiving server would (:func:`received`)."""
        raw = received(raw, authenticated=authenticated)
        typ, data = self.imap.append(folder, r"(\Seen)" if seen else None, None, raw)
        assert typ == "OK", data

    def flags(self, folder: str) -> dict[int, set[str]]:
        """UID → flags, read without touching anything."""
        self.imap.select(folder, readonly=True)
        typ, data = self.imap.uid("FETCH", "1:*", "(UID FLAGS)")
        assert typ == "OK", data
        found: dict[int, set[str]] = {}
        for item in data:
            if not isinstance(item, bytes):
                continue
            text = item.decode()
            uid = int(text.split("UID ", 1)[1].split()[0].rstrip(")"))
            found[uid] = set(text.split("FLAGS (", 1)[1].split(")", 1)[0].split())
        return found

    def message_ids(self, folder: str, *, seen: bool) -> set[str]:
        """Message-ID headers of the messages that are (or are not) flagged \\Seen."""
        self.imap.select(folder, readonly=True)
        _, data = self.imap.uid("SEARCH", "SEEN" if seen else "UNSEEN")
        uids = data[0].split() if data and data[0] else []
        if not uids:
            return set()
        _, data = self.imap.uid("FETCH", b",".join(uids).decode(), "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        headers = [item[1].decode() for item in data if isinstance(item, tuple)]
        return {h.split(":", 1)[1].strip() for h in headers if ":" in h}

    def expunge(self, folder: str, uids: list[int]) -> None:
        self.imap.select(folder)
        uidset = ",".join(map(str, uids))
        assert self.imap.uid("STORE", uidset, "+FLAGS.SILENT", r"(\Deleted)")[0] == "OK"
        assert self.imap.expunge()[0] == "OK"
        self.imap.close()

    def count(self, folder: str) -> int:
        return len(self.flags(folder))

    def uidvalidity(self, folder: str) -> int:
        out = self.server.doveadm("mailbox", "status", "-u", self.user, "uidvalidity", folder)
        return int(out.split("=", 1)[1])

    def reset_uidvalidity(self, folder: str) -> None:
        """What a server migration or a rebuilt index does: same mail, new UIDs, new UIDVALIDITY."""
        before = self.uidvalidity(folder)
        parking = f"{folder}-parked"
        if self.imap.state == "SELECTED":
            self.imap.close()
        assert self.imap.rename(folder, parking)[0] == "OK"
        self.create(folder)
        self.imap.select(parking)
        assert self.imap.uid("COPY", "1:*", folder)[0] == "OK"
        self.imap.close()
        assert self.imap.delete(parking)[0] == "OK"
        # a new folder in the same second could get the old value back: make sure it changed
        self.server.doveadm(
            "mailbox", "update", "--uid-validity", str(before + 1000), "-u", self.user, folder
        )
        assert self.uidvalidity(folder) != before
