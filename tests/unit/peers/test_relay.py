# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay test peer, exercised as a real process on 127.0.0.1 with smtplib."""

from __future__ import annotations

import json
import signal
import smtplib
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.peers import certs, records

RELAY = Path(__file__).resolve().parents[2] / "peers" / "relay.py"
NAME = "relay.smtp-relay.test"
USER, PASSWORD = "relayuser", "s3cret-pw"
LISTENERS = {
    # name: (tls, auth, cert label)
    "submission": ("starttls", "optional", "relay"),
    "submission_auth": ("starttls", "required", "relay"),
    "submissions": ("implicit", "required", "relay"),
    "plain": ("none", "none", None),
    "wrongname": ("starttls", "optional", "wrongname"),
    "expired": ("implicit", "optional", "expired"),
    "campus": ("none", "none", None),  # admits senders of approved domains only, like a campus relay
}


@dataclass
class Relay:
    ports: dict[str, int]
    ca: str
    records_dir: Path
    log: Path

    def verifying(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def smtp(self, listener: str, context: ssl.SSLContext | None = None) -> smtplib.SMTP:
        if LISTENERS[listener][0] == "implicit":
            return smtplib.SMTP_SSL("127.0.0.1", self.ports[listener], timeout=5, context=context or self.verifying())
        return smtplib.SMTP("127.0.0.1", self.ports[listener], timeout=5)


def write_config(directory: Path, paths: dict[str, str], listeners: dict) -> Path:
    config = {
        "hostname": NAME,
        "records_dir": str(directory / "records"),
        "ready_file": str(directory / "ready.json"),
        "users": {USER: PASSWORD},
        "reject_senders": ["blocked@sender.test", "@spammer.test"],
        "reject_recipients": ["nobody@dest.test", "@nowhere.test"],
        "listeners": [
            {
                "name": name,
                "host": "127.0.0.1",
                "port": 0,
                "tls": tls,
                "auth": auth,
                "auth_mechanisms": ["PLAIN", "LOGIN"],
                "auth_require_tls": True,
                **({"cert": paths[label], "key": paths[f"{label}_key"]} if label else {}),
                **({"allowed_sender_domains": ["sender.test"]} if name == "campus" else {}),
            }
            for name, (tls, auth, label) in listeners.items()
        ],
    }
    path = directory / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def start(directory: Path, config: Path) -> tuple[subprocess.Popen, dict[str, int]]:
    log = (directory / "relay.log").open("w")
    proc = subprocess.Popen([sys.executable, str(RELAY), "--config", str(config)], stdout=log, stderr=subprocess.STDOUT)
    ready = directory / "ready.json"
    deadline = time.monotonic() + 10
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"relay did not start:\n{(directory / 'relay.log').read_text()}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


@pytest.fixture(scope="module")
def relay(tmp_path_factory) -> Relay:
    directory = tmp_path_factory.mktemp("relay")
    paths = certs.make_certs(directory / "certs", names=[NAME], ips=["127.0.0.1"])
    proc, ports = start(directory, write_config(directory, paths, LISTENERS))
    yield Relay(ports=ports, ca=paths["ca"], records_dir=directory / "records", log=directory / "relay.log")
    proc.terminate()
    proc.wait(timeout=10)


def message(sender: str, to: str, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = f"<{subject.replace(' ', '-')}@client.test>"
    msg.set_content("Hello from the relay test.\n")
    return msg


def send(smtp: smtplib.SMTP, sender: str, to: list[str], msg: EmailMessage) -> str:
    """Send one message step by step; return the reply text to DATA."""
    assert smtp.mail(sender)[0] == 250
    for rcpt in to:
        assert smtp.rcpt(rcpt)[0] == 250
    # A str goes out with CRLF line ends, as real clients send them; bytes would go out as they are.
    code, reply = smtp.data(msg.as_string())
    assert code == 250, reply
    return reply.decode()


def queued_id(reply: str) -> str:
    assert reply.startswith("2.0.0 Ok: queued as "), reply
    return reply.rsplit(" ", 1)[1]


def auth(smtp: smtplib.SMTP, mechanism: str, password: str = PASSWORD) -> None:
    smtp.user, smtp.password = USER, password
    smtp.auth(mechanism, getattr(smtp, f"auth_{mechanism.lower()}"))


def test_starttls_mail_is_recorded_with_envelope_and_headers(relay):
    with relay.smtp("submission") as smtp:
        smtp.ehlo("client.test")
        assert smtp.has_extn("starttls")
        smtp.starttls(context=relay.verifying())
        smtp.ehlo("client.test")
        reply = send(
            smtp, "app@sender.test", ["a@dest.test", "b@dest.test"], message("app@sender.test", "a@dest.test", "hi 1")
        )
    record = records.wait_for(relay.records_dir, lambda r: r["id"] == queued_id(reply), timeout=5)
    assert record["listener"] == "submission"
    assert record["port"] == relay.ports["submission"]
    assert record["peer"] == "127.0.0.1"
    assert record["tls"] is True
    assert record["tls_version"] in {"TLSv1.2", "TLSv1.3"}
    assert record["auth_user"] is None
    assert record["mail_from"] == "app@sender.test"
    assert record["rcpt_tos"] == ["a@dest.test", "b@dest.test"]
    assert record["helo"] == "client.test"
    assert "Subject: hi 1\r\n" in record["data"]
    parsed = records.headers(record)
    assert parsed["Message-ID"] == "<hi-1@client.test>"
    assert parsed["From"] == "app@sender.test"


@pytest.mark.parametrize("listener", ["submission", "submission_auth"])
def test_auth_hidden_and_refused_before_starttls(relay, listener):
    with relay.smtp(listener) as smtp:
        smtp.ehlo("client.test")
        assert not smtp.has_extn("auth")
        assert smtp.docmd("AUTH", "PLAIN")[0] == 538
        smtp.starttls(context=relay.verifying())
        smtp.ehlo("client.test")
        assert smtp.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_good_credentials_are_accepted_and_recorded(relay, mechanism):
    with relay.smtp("submission_auth") as smtp:
        smtp.starttls(context=relay.verifying())
        smtp.ehlo("client.test")
        auth(smtp, mechanism)
        reply = send(smtp, "app@sender.test", ["a@dest.test"], message("app@sender.test", "a@dest.test", mechanism))
    record = records.wait_for(relay.records_dir, lambda r: r["id"] == queued_id(reply), timeout=5)
    assert record["auth_user"] == USER
    assert record["listener"] == "submission_auth"
    assert PASSWORD not in relay.log.read_text()


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_auth_bad_credentials_get_535(relay, mechanism):
    with relay.smtp("submission_auth") as smtp:
        smtp.starttls(context=relay.verifying())
        smtp.ehlo("client.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as raised:
            auth(smtp, mechanism, password="wrong")
        assert raised.value.smtp_code == 535


def test_mail_without_auth_gets_530_on_required_listener(relay):
    with relay.smtp("submission_auth") as smtp:
        smtp.starttls(context=relay.verifying())
        smtp.ehlo("client.test")
        code, _unused = smtp.mail("app@sender.test")
        assert code == 530


def test_implicit_tls_offers_auth_at_once_and_records_tls(relay):
    with relay.smtp("submissions") as smtp:
        smtp.ehlo("client.test")
        assert not smtp.has_extn("starttls")
        assert smtp.esmtp_features["auth"].split() == ["LOGIN", "PLAIN"]
        assert smtp.mail("app@sender.test")[0] == 530
        smtp.rset()
        auth(smtp, "PLAIN")
        reply = send(smtp, "app@sender.test", ["a@dest.test"], message("app@sender.test", "a@dest.test", "implicit"))
    record = records.wait_for(relay.records_dir, lambda r: r["id"] == queued_id(reply), timeout=5)
    assert (record["listener"], record["tls"], record["auth_user"]) == ("submissions", True, USER)


def test_plain_listener_offers_neither_tls_nor_auth(relay):
    with relay.smtp("plain") as smtp:
        smtp.ehlo("client.test")
        assert not smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        assert smtp.docmd("AUTH", "PLAIN")[0] == 503
        reply = send(smtp, "<>", ["a@dest.test"], message("root@host.test", "a@dest.test", "plain"))
    record = records.wait_for(relay.records_dir, lambda r: r["id"] == queued_id(reply), timeout=5)
    assert (record["listener"], record["tls"], record["tls_version"], record["mail_from"]) == ("plain", False, None, "")


@pytest.mark.parametrize(
    ("listener", "reason"),
    # smtplib checks the name it connected to, here 127.0.0.1: the wrong-name cert fails as an IP mismatch.
    [("wrongname", "IP address mismatch"), ("expired", "certificate has expired")],
)
def test_bad_certificates_fail_verification_but_not_the_handshake(relay, listener, reason):
    # Implicit TLS fails while connecting, STARTTLS while upgrading: both inside the raises block.
    with pytest.raises(ssl.SSLCertVerificationError) as raised, relay.smtp(listener) as smtp:
        smtp.starttls(context=relay.verifying())
    assert reason in raised.value.verify_message
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    with relay.smtp(listener, context=unverified) as smtp:
        if LISTENERS[listener][0] == "starttls":
            smtp.starttls(context=unverified)
        assert smtp.ehlo("client.test")[0] == 250
        assert smtp.sock.version() in {"TLSv1.2", "TLSv1.3"}


@pytest.mark.parametrize(
    ("sender", "rcpt", "step", "code"),
    [
        ("blocked@sender.test", "a@dest.test", "mail", 553),
        ("anyone@SPAMMER.test", "a@dest.test", "mail", 553),
        ("app@sender.test", "nobody@dest.test", "rcpt", 550),
        ("app@sender.test", "x@nowhere.test", "rcpt", 550),
    ],
)
def test_rejected_senders_and_recipients(relay, sender, rcpt, step, code):
    with relay.smtp("plain") as smtp:
        smtp.ehlo("client.test")
        mail_code = smtp.mail(sender)[0]
        if step == "mail":
            assert mail_code == code
        else:
            assert mail_code == 250
            assert smtp.rcpt(rcpt)[0] == code


@pytest.mark.parametrize(("sender", "code"), [("", 250), ("app@sender.test", 250), ("app@other.test", 553)])
def test_a_campus_listener_admits_approved_domains_and_the_null_sender(relay, sender, code):
    with relay.smtp("campus") as smtp:
        smtp.ehlo("client.test")
        assert smtp.mail(sender)[0] == code
        if code == 250:
            assert smtp.rcpt("ops@dest.test")[0] == 250
            assert smtp.data(b"Subject: bounce\r\n\r\nreturned\r\n")[0] == 250
            subject_records = [r for r in records.messages(relay.records_dir) if r["listener"] == "campus"]
            assert subject_records[-1]["mail_from"] == sender


def test_records_clear_and_wait_for_timeout_lists_arrivals(relay, tmp_path):
    assert records.messages(relay.records_dir), "earlier tests should have left records"
    copy = tmp_path / "records"
    copy.mkdir()
    for record in records.messages(relay.records_dir)[:2]:
        (copy / f"{record['id']}.json").write_text(json.dumps(record))
    (copy / ".partial.tmp").write_text("{")
    with pytest.raises(AssertionError, match=r"arrived:\n  [0-9A-F]{12} via "):
        records.wait_for(copy, lambda r: False, timeout=0.3)
    records.clear(copy)
    assert records.messages(copy) == []
    assert (copy / ".partial.tmp").exists()


def test_sigterm_stops_cleanly_and_bad_config_is_refused(tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"records_dir": str(tmp_path), "listeners": [{"port": 0, "tls": "ssl"}]}))
    command = [sys.executable, str(RELAY), "--config", str(config)]
    bad = subprocess.run(command, capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    assert "tls 'ssl' is not one of starttls, implicit, none" in bad.stderr

    proc, _unused = start(tmp_path, write_config(tmp_path, {}, {"plain": LISTENERS["plain"]}))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=5) == 0
    assert "event=stopped" in (tmp_path / "relay.log").read_text()
