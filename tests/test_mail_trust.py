"""The ``verify_sender`` decision (worker/imap/trust.py): which channels check, what passes, what is held.

DKIM is verified for real: the key pair is made here with openssl, the mail is
signed with dkimpy, and the public key is handed to the verifier in place of DNS.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest

from leadrelay.routing import Routing
from leadrelay.worker.imap.trust import MailTrust, sender_domains, verify
from tests.conftest import routing_with

MX = "mx.example.net"
ROUTING = routing_with()
TRUST = MailTrust("leads", authserv_ids=(MX,))
GENUINE = (
    b"From: Hubble <enquiries@hubblehq.com>\r\n"
    b"To: leads@foundry.example\r\n"
    b"Subject: New enquiry (ref enq_TRUST001)\r\n"
    b"Date: Fri, 27 Nov 2026 09:14:05 +0000\r\n"
    b"Message-ID: <enq_TRUST001@mail.hubblehq.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Name: Ann Example\r\nEmail: ann@client.example\r\nReference: enq_TRUST001\r\n"
)


def results(said: str, authserv_id: str = MX) -> bytes:
    return f"Authentication-Results: {authserv_id}; {said}\r\n".encode()


def test_the_four_portals_verify_by_default_and_configurable_channels_do_not() -> None:
    for name in ("hubblehq", "liquidspace", "workthere", "kontor"):
        domains = sender_domains(name, ROUTING.channels[name])
        assert domains, name
    assert sender_domains("hubblehq", ROUTING.channels["hubblehq"]) == ("hubblehq.com", "hubble.com")
    assert sender_domains("canonical", ROUTING.channels["canonical"]) is None
    spacepool = {"lead_source": 26, "adapter": "configurable", "parse": {"senders": ["*@mail.spacepool.com"]}}
    custom = routing_with(channels={"spacepool": spacepool})
    assert sender_domains("spacepool", custom.channels["spacepool"]) is None
    hubble_off = {**ROUTING.channels["hubblehq"].model_dump(), "verify_sender": False}
    opted_in = routing_with(
        channels={"spacepool": {**spacepool, "verify_sender": True}, "hubblehq": hubble_off}
    )
    assert sender_domains("spacepool", opted_in.channels["spacepool"]) == ("mail.spacepool.com",)
    assert sender_domains("hubblehq", opted_in.channels["hubblehq"]) is None


def test_a_spoof_without_authentication_results_is_refused_with_what_to_do() -> None:
    verdict = verify(GENUINE, channel="hubblehq", routing=ROUTING, trust=TRUST)
    assert not verdict.trusted and verdict.check == "authentication"
    assert "sender domain hubblehq.com is not authenticated" in verdict.message
    assert f"no Authentication-Results from a trusted server ({MX})" in verdict.message
    assert "replay this dead letter" in verdict.message and "trusted_authserv_ids" in verdict.message
    assert "ann@client.example" not in verdict.message  # no personal data in the dead letter


def test_dmarc_pass_from_a_trusted_server_is_accepted_and_from_another_ignored() -> None:
    passing = results("dmarc=pass header.from=hubblehq.com")
    assert verify(passing + GENUINE, channel="hubblehq", routing=ROUTING, trust=TRUST).check == "dmarc"
    forged = results("dmarc=pass header.from=hubblehq.com", authserv_id="mx.attacker.example")
    assert not verify(forged + GENUINE, channel="hubblehq", routing=ROUTING, trust=TRUST).trusted


def test_aligned_dkim_is_accepted_and_misaligned_refused_with_what_the_server_said() -> None:
    aligned = results("dkim=pass header.d=mail.hubblehq.com; dmarc=none")
    assert verify(aligned + GENUINE, channel="hubblehq", routing=ROUTING, trust=TRUST).check == "dkim"
    misaligned = results("dkim=pass header.d=mailer.example; spf=pass smtp.mailfrom=b@mailer.example")
    verdict = verify(misaligned + GENUINE, channel="hubblehq", routing=ROUTING, trust=TRUST)
    assert not verdict.trusted
    assert f"the trusted server {MX} says dkim=pass (mailer.example), spf=pass" in verdict.message


def test_mail_from_another_domain_is_refused_unless_it_is_a_trusted_forwarder() -> None:
    forward = GENUINE.replace(b"From: Hubble <enquiries@hubblehq.com>", b"From: Jo <jo@foundry.example>")
    said = results("dmarc=pass header.from=foundry.example")
    verdict = verify(said + forward, channel="hubblehq", routing=ROUTING, trust=TRUST)
    assert not verdict.trusted and verdict.check == "domain"
    assert "sent from foundry.example" in verdict.message and "trusted_forwarders" in verdict.message
    ours = MailTrust("leads", authserv_ids=(MX,), forwarders=("foundry.example",))
    assert verify(said + forward, channel="hubblehq", routing=ROUTING, trust=ours).trusted
    # a forward that fails authentication is no better than a spoof
    assert not verify(forward, channel="hubblehq", routing=ROUTING, trust=ours).trusted


def test_two_from_headers_are_refused() -> None:
    double = b"From: x@attacker.example\r\n" + results("dmarc=pass header.from=hubblehq.com") + GENUINE
    verdict = verify(double, channel="hubblehq", routing=ROUTING, trust=TRUST)
    assert not verdict.trusted and "2 From headers" in verdict.message


def test_a_channel_with_the_check_off_takes_anything() -> None:
    off = routing_with(
        channels={"hubblehq": {**ROUTING.channels["hubblehq"].model_dump(), "verify_sender": False}}
    )
    assert verify(GENUINE, channel="hubblehq", routing=off, trust=TRUST).check == "off"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """A fresh RSA key pair: the private key (PEM) and the DNS record of its public half."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl makes the test's DKIM key (apt-get install openssl)"
    folder: Path = tmp_path_factory.mktemp("dkim")
    private = folder / "private.pem"
    subprocess.run(
        [openssl, "genrsa", "-traditional", "-out", str(private), "2048"], check=True, capture_output=True
    )
    public = subprocess.run(
        [openssl, "rsa", "-in", str(private), "-pubout", "-outform", "DER"], check=True, capture_output=True
    ).stdout
    return private.read_bytes(), b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)


def signed(raw: bytes, private: bytes, domain: bytes = b"hubblehq.com") -> bytes:
    signature: bytes = dkim.sign(
        raw, b"s1", domain, private, include_headers=[b"from", b"to", b"subject", b"date", b"message-id"]
    )
    return signature + raw


def dns_for(record: bytes, *domains: str) -> object:
    names = {f"s1._domainkey.{d}.".encode() for d in domains}

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name in names else None

    return lookup


def _verify_locally(raw: bytes, record: bytes, *domains: str, routing: Routing = ROUTING) -> tuple[bool, str]:
    trust = MailTrust("leads", dns=dns_for(record, *domains))  # type: ignore[arg-type]
    verdict = verify(raw, channel="hubblehq", routing=routing, trust=trust)
    return verdict.trusted, verdict.check


def test_a_real_dkim_signature_is_verified_here_when_no_server_says(keys: tuple[bytes, bytes]) -> None:
    private, record = keys
    assert _verify_locally(signed(GENUINE, private), record, "hubblehq.com") == (True, "dkim-local")


def test_a_tampered_signed_mail_is_refused(keys: tuple[bytes, bytes]) -> None:
    private, record = keys
    tampered = signed(GENUINE, private).replace(b"ann@client.example", b"eve@attacker.example")
    assert _verify_locally(tampered, record, "hubblehq.com") == (False, "authentication")


def test_a_valid_signature_of_another_domain_is_refused(keys: tuple[bytes, bytes]) -> None:
    private, record = keys
    theirs = signed(GENUINE, private, domain=b"attacker.example")
    assert _verify_locally(theirs, record, "attacker.example") == (False, "authentication")


def test_no_key_in_dns_is_refused(keys: tuple[bytes, bytes]) -> None:
    private, record = keys
    assert _verify_locally(signed(GENUINE, private), record) == (False, "authentication")
