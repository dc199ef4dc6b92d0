# SPDX-License-Identifier: GPL-3.0-or-later
"""relay_check against the real relay peer: every TLS mode, a relay down, dropped packets, bad certificates,
wrong credentials, rejected envelopes, and mechanisms Postfix's SASL options forbid."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._probe.relay_check import run
from tests.integration.relay_check.conftest import (
    BLOCKED_RECIPIENT,
    BLOCKED_SENDER,
    CLOSED_PORT,
    DROP_PORT,
    LISTENERS,
    PASSWORD,
    ROOT,
    USER,
    free_port,
)
from tests.peers import records

pytestmark = pytest.mark.peers

SASL = {
    "smtp_sasl_auth_enable": "yes",
    "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
    "smtp_sasl_security_options": "noanonymous",
    "smtp_sasl_tls_security_options": "noanonymous",
}


def settings(relay, listener, level="verify", **extra):
    tls = "yes" if LISTENERS[listener][0] == "implicit" else "no"
    # The relay is "localhost", known from /etc/hosts: Postfix finds it there only with smtp_host_lookup = native
    # (its default, dns, asks DNS alone), and relay_check looks it up the same way.
    base = {"relayhost": relay.relayhost(listener), "smtp_tls_security_level": level, "smtp_tls_wrappermode": tls,
            "smtp_tls_CAfile": relay.ca, "smtp_host_lookup": "native"}  # fmt: skip
    return {**base, **extra}


def by_id(result):
    return {c["id"]: c for c in result["checks"]}


def failed(result):
    return sorted(c["id"] for c in result["checks"] if c["status"] == "fail")


def check(params, **kw):
    result = run({"timeout": 5, **params}, **kw)
    assert PASSWORD not in json.dumps(result)
    return result


@pytest.mark.parametrize(
    ("listener", "level", "auth"),
    [("starttls", "verify", True), ("implicit", "secure", True), ("plain", "none", False)],
)
def test_good_relay_on_each_tls_mode_takes_a_test_message(relay, listener, level, auth):
    extra = {**SASL, "smtp_tls_secure_cert_match": "nexthop"} if auth else {}
    params = {"settings": settings(relay, listener, level, **extra), "mail_from": "app@sender.test",
              "rcpt_to": ["ops@dest.test"], "send_test": True, "subject": f"relay_check {listener}",
              "body": "integration test\n"}  # fmt: skip
    if auth:
        params.update(username=USER, password=PASSWORD)
    result = check(params)
    assert result["valid"] is True, failed(result)
    checks = by_id(result)
    for stage in ("dns.address", "tcp.connect", "smtp.banner", "smtp.ehlo", "envelope.mail_from", "message.sent"):
        assert checks[stage]["status"] == "pass", checks[stage]
    if listener != "plain":
        assert checks["tls.handshake"]["status"] == "pass"
        assert checks["cert.chain"]["status"] == "pass"
        assert checks["cert.name"]["status"] == "pass"
        assert result["tls"]["certificate"]["days_left"] > 0
        assert result["auth"]["authenticated"] is True
    received = records.wait_for(relay.records_dir, lambda r: r["id"] == result["queue_id"], timeout=10)
    assert received["mail_from"] == "app@sender.test"
    assert received["rcpt_tos"] == ["ops@dest.test"]
    assert received["auth_user"] == (USER if auth else None)
    assert received["tls"] is (listener != "plain")
    assert records.headers(received)["Subject"] == f"relay_check {listener}"


def test_relay_down_is_refused(relay):
    port = free_port()
    result = check({"relayhost": f"[127.0.0.1]:{port}", "tls": "starttls"})
    assert failed(result) == ["tcp.refused"]
    assert by_id(result)["smtp.banner"]["status"] == "skip"


def test_dropped_packets_time_out_and_closed_port_refuses(dropping_host):
    dropped = check({"relayhost": f"[{dropping_host}]:{DROP_PORT}", "tls": "starttls", "timeout": 2})
    assert failed(dropped) == ["tcp.timeout"]
    timeout = by_id(dropped)["tcp.timeout"]
    assert "dropped" in timeout["message"]
    assert 1500 <= timeout["elapsed_ms"] < 10000
    refused = check({"relayhost": f"[{dropping_host}]:{CLOSED_PORT}", "tls": "starttls", "timeout": 2})
    assert failed(refused) == ["tcp.refused"]


def test_certificate_for_the_wrong_name(relay):
    result = check({"settings": settings(relay, "wrongname")})
    assert failed(result) == ["cert.name_mismatch"]
    assert "wrong-name.smtp-relay.test" in by_id(result)["cert.name_mismatch"]["message"]
    # at level encrypt Postfix does not check names: reported, not failed
    relaxed = check({"settings": settings(relay, "wrongname", "encrypt")})
    assert relaxed["valid"] is True
    assert by_id(relaxed)["cert.name_mismatch"]["status"] == "warn"


def test_expired_certificate(relay):
    result = check({"settings": settings(relay, "expired"), "mail_from": "app@sender.test"})
    assert failed(result) == ["cert.expired", "cert.untrusted"]
    assert "expired" in by_id(result)["cert.untrusted"]["message"]
    assert result["tls"]["certificate"]["expired"] is True
    # the probe went on without verification, as far as the envelope
    assert by_id(result)["envelope.mail_from"]["status"] == "pass"


def test_wrong_credentials(relay):
    params = {"settings": settings(relay, "implicit", **SASL), "username": USER, "password": PASSWORD + "-wrong"}
    result = run({"timeout": 5, **params})
    assert failed(result) == ["auth.rejected"]
    assert "535" in by_id(result)["auth.rejected"]["message"]
    assert PASSWORD not in json.dumps(result)


def test_sender_rejected(relay):
    result = check({"settings": settings(relay, "starttls"), "mail_from": BLOCKED_SENDER, "rcpt_to": ["a@dest.test"]})
    assert failed(result) == ["envelope.sender_rejected"]
    assert "553" in by_id(result)["envelope.sender_rejected"]["message"]


def test_recipient_rejected(relay):
    params = {"settings": settings(relay, "starttls"), "mail_from": "app@sender.test", "rcpt_to": [BLOCKED_RECIPIENT]}
    result = check(params)
    assert failed(result) == ["envelope.recipient_rejected"]
    assert BLOCKED_RECIPIENT in by_id(result)["envelope.recipient_rejected"]["message"]


def test_only_mechanisms_postfix_forbids(relay):
    forbidding = {**SASL, "smtp_sasl_security_options": "noplaintext, noanonymous"}
    del forbidding["smtp_sasl_tls_security_options"]  # Postfix's default: the same as smtp_sasl_security_options
    result = check({"settings": settings(relay, "starttls", **forbidding), "username": USER, "password": PASSWORD})
    assert failed(result) == ["sasl.no_worthy_mechs"]
    assert result["auth"]["offered"] and result["auth"]["permitted"] == []
    assert by_id(result)["auth.login"]["status"] == "skip"
    assert "No worthy mechs" in by_id(result)["sasl.no_worthy_mechs"]["message"]


def test_the_module_through_ansible(relay):
    args = {"relayhost": relay.relayhost("starttls"), "tls": "starttls", "ca_file": relay.ca, "username": USER,
            "password": PASSWORD, "mail_from": "app@sender.test", "rcpt_to": ["ops@dest.test"], "send_test": True,
            "subject": "via ansible", "timeout": 5}  # fmt: skip
    # The settings are given: the module must not judge the controller's own Postfix, if it has one.
    args["settings"] = {
        "smtp_tls_security_level": "secure", "smtp_tls_wrappermode": "no", "smtp_tls_CAfile": relay.ca,
        "smtp_sasl_auth_enable": "yes", "smtp_sasl_password_maps": "hash:/nonexistent/sasl_passwd",
        "smtp_sasl_security_options": "noplaintext, noanonymous", "smtp_sasl_tls_security_options": "noanonymous",
        "smtp_host_lookup": "native",
    }  # fmt: skip
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".cache" / "collections"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_LOCALHOST_WARNING": "0",
    }
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible"), "localhost", "-m", "smtp.relay.relay_check", "-a", json.dumps(args),
         "-e", f"ansible_python_interpreter={ROOT / '.venv' / 'bin' / 'python'}"],
        capture_output=True, text=True, env=env, timeout=180, check=False,
    )  # fmt: skip
    assert PASSWORD not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["valid"] is True
    assert result["changed"] is False
    assert result["settings_source"] == "given"
    received = records.wait_for(relay.records_dir, lambda r: r["id"] == result["queue_id"], timeout=10)
    assert records.headers(received)["Subject"] == "via ansible"
