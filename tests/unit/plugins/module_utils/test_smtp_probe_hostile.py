# SPDX-License-Identifier: GPL-3.0-or-later
"""The live probe against a hostile SMTP server on 127.0.0.1 (tests/peers/hostile_smtp.py), every mode x TLS mode.

Each run must end in bounded time (every stage within ``timeout``, the probe within the stated overall deadline),
in bounded memory, without a traceback, with a stable check id saying what went wrong. Only loopback servers the
tests start themselves are used: no container, no ``peers`` mark.
"""

from __future__ import annotations

import base64
import hmac
import json
import socket
import ssl
import threading
import time
import tracemalloc

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, STATUSES
from ansible_collections.smtp.relay.plugins.module_utils._dns import make_resolver
from ansible_collections.smtp.relay.plugins.module_utils._probe.relay_check import run as relay_check_run
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import (
    PROBE_DEADLINE_FACTOR,
    Clock,
    SmtpSession,
    UnexpectedReply,
)
from ansible_collections.smtp.relay.plugins.module_utils._probe.stages import ProbeSpec, probe
from tests.peers.hostile_smtp import HOST, QUEUE_ID, RELAY_NAME, HostileSMTP
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend

TIMEOUT = 1.0
STAGE_SLACK = 0.35  # seconds a stage may overrun its timeout: scheduling on a busy machine, closing sockets
USER, PASSWORD = "relayuser", "s3cret-pw"
ENVELOPE = {"mail_from": "sender@example.test", "rcpt_to": ("ops@example.test",), "send_test": True}

# (mode, tls) -> (check id, status) that says what went wrong; None: the session passes.
EXPECTED = {
    ("good", "starttls"): None,
    ("good", "implicit"): None,
    ("good", "none"): None,
    ("silent", "starttls"): ("smtp.no_banner", FAIL),
    ("silent", "implicit"): ("tls.timeout", FAIL),
    ("silent", "none"): ("smtp.no_banner", FAIL),
    ("stall_after_banner", "starttls"): ("smtp.timeout", FAIL),
    ("stall_after_banner", "implicit"): ("smtp.timeout", FAIL),
    ("stall_after_banner", "none"): ("smtp.timeout", FAIL),
    ("drip", "starttls"): ("smtp.no_banner", FAIL),
    ("drip", "implicit"): ("smtp.no_banner", FAIL),
    ("drip", "none"): ("smtp.no_banner", FAIL),
    ("drip_ehlo", "starttls"): ("smtp.timeout", FAIL),
    ("drip_ehlo", "implicit"): ("smtp.timeout", FAIL),
    ("drip_ehlo", "none"): ("smtp.timeout", FAIL),
    ("drip_handshake", "starttls"): ("tls.timeout", FAIL),
    ("drip_handshake", "implicit"): ("tls.timeout", FAIL),
    ("garbage", "starttls"): ("smtp.not_smtp", FAIL),
    ("garbage", "implicit"): ("tls.handshake_failed", FAIL),
    ("garbage", "none"): ("smtp.not_smtp", FAIL),
    ("flood", "starttls"): ("smtp.reply_too_large", FAIL),
    ("flood", "implicit"): ("smtp.reply_too_large", FAIL),
    ("flood", "none"): ("smtp.reply_too_large", FAIL),
    ("flood_line", "starttls"): ("smtp.reply_too_large", FAIL),
    ("flood_line", "implicit"): ("smtp.reply_too_large", FAIL),
    ("flood_line", "none"): ("smtp.reply_too_large", FAIL),
    ("close_mid_starttls", "starttls"): ("tls.handshake_failed", FAIL),
    ("wrong_certificate", "starttls"): ("cert.name_mismatch", FAIL),
    ("wrong_certificate", "implicit"): ("cert.name_mismatch", FAIL),
    ("reject", "starttls"): ("smtp.banner_rejected", FAIL),
    ("reject", "implicit"): ("smtp.banner_rejected", FAIL),
    ("reject", "none"): ("smtp.banner_rejected", FAIL),
}
FLOOD_PEAK_LIMIT = 1 << 20  # bytes of Python heap a probe may use against a flood (reply cap 64 KiB; was 19 MB)


def loopback_resolver():
    """The relay's name is 127.0.0.1, so that no DNS question leaves the machine (sockets are real)."""
    return make_resolver(backend=StaticBackend({(RELAY_NAME, "A"): [HOST]}))


@pytest.fixture
def ca_file(tmp_path):
    with HostileSMTP("good") as server:
        return server.write_ca(tmp_path / "ca.pem")


def by_id(checks):
    ids = [c["id"] for c in checks]
    assert len(ids) == len(set(ids)), ids
    return {c["id"]: c for c in checks}


def assert_bounded(checks, elapsed, timeout=TIMEOUT, one_stage_per_check=True):
    """The whole probe within the stated deadline; each check within the timeout when it is one stage.

    A stage is one lookup, connection, handshake or SMTP command with its reply: a check spanning several
    (cert.sni's second session, several RCPT TO) may take one timeout for each.
    """
    for c in checks:
        assert c["status"] in STATUSES, c
        if one_stage_per_check:
            assert c.get("elapsed_ms", 0) <= (timeout + STAGE_SLACK) * 1000, c
    assert elapsed < PROBE_DEADLINE_FACTOR * timeout + STAGE_SLACK, elapsed


def commands(server):
    """What the server was told, verbs upper-cased (smtplib sends ``mail FROM:``)."""
    return [" ".join([c.split(" ", 1)[0].upper(), *c.split(" ", 1)[1:]]) for c in server.commands]


def probe_spec(server, tls, ca_file, **kw):
    base = {
        "host": RELAY_NAME,
        "port": server.port,
        "tls": tls,
        "timeout": TIMEOUT,
        "tls_required": tls != "none",
        "verify": tls != "none",
        "ca_file": ca_file if tls != "none" else None,
        "ehlo_name": "probe.example.test",
        "username": USER,
        "password": PASSWORD,
    }
    return ProbeSpec(**{**base, **ENVELOPE, **kw})


def timed_probe(spec):
    started = time.monotonic()
    result = probe(spec, loopback_resolver())
    return result, time.monotonic() - started


@pytest.mark.parametrize(("mode", "tls"), sorted(EXPECTED), ids=[f"{m}-{t}" for m, t in sorted(EXPECTED)])
def test_probe_against_hostile_server(mode, tls, ca_file):
    with HostileSMTP(mode, tls, users={USER: PASSWORD}) as server:
        spec = probe_spec(server, tls, ca_file)
        if mode.startswith("flood"):
            tracemalloc.start()
            try:
                result, elapsed = timed_probe(spec)
                _size, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            assert peak < FLOOD_PEAK_LIMIT, f"peak {peak} bytes"
        else:
            result, elapsed = timed_probe(spec)
    assert not server.errors
    assert_bounded(result.checks, elapsed)
    # A hostile relay is given up on at its first failing stage: well under the overall deadline.
    assert elapsed < 2 * TIMEOUT + STAGE_SLACK, elapsed
    checks = by_id(result.checks)
    assert PASSWORD not in json.dumps(result.checks)
    expected = EXPECTED[(mode, tls)]
    if expected is None:
        failing = [c for c in result.checks if c["status"] not in (PASS, "skip")]
        assert not failing, failing
        assert result.queue_id == QUEUE_ID
        assert server.messages and server.messages[0]["rcpt_to"] == ["<ops@example.test>"]
        return
    check_id, status = expected
    assert check_id in checks, [(c["id"], c["status"], c["message"]) for c in result.checks]
    assert checks[check_id]["status"] == status
    assert "probe.error" not in checks
    if mode != "wrong_certificate":  # a name mismatch is reported, and the probe goes on to the envelope
        assert not server.messages


# One mode per row through relay_check's own entry point (options, static rules, then the probe).
RELAY_CHECK_CASES = [
    ("good", "starttls"),
    ("good", "implicit"),
    ("silent", "implicit"),
    ("stall_after_banner", "starttls"),
    ("drip", "implicit"),
    ("drip_ehlo", "none"),
    ("drip_handshake", "starttls"),
    ("garbage", "none"),
    ("flood", "starttls"),
    ("flood_line", "implicit"),
    ("close_mid_starttls", "starttls"),
    ("wrong_certificate", "implicit"),
    ("reject", "starttls"),
]


@pytest.mark.parametrize(("mode", "tls"), RELAY_CHECK_CASES, ids=[f"{m}-{t}" for m, t in RELAY_CHECK_CASES])
def test_relay_check_run_against_hostile_server(mode, tls, ca_file):
    with HostileSMTP(mode, tls, users={USER: PASSWORD}) as server:
        params = {
            "relayhost": server.relayhost,
            "tls": tls,
            "probe": True,
            "timeout": TIMEOUT,
            "ehlo_name": "probe.example.test",
            "ca_file": ca_file if tls != "none" else None,
            "username": USER,
            "password": PASSWORD,
            "mail_from": ENVELOPE["mail_from"],
            "rcpt_to": list(ENVELOPE["rcpt_to"]),
            "send_test": True,
        }
        started = time.monotonic()
        result = relay_check_run(params)
        elapsed = time.monotonic() - started
    assert_bounded(result["checks"], elapsed)
    assert elapsed < 2 * TIMEOUT + STAGE_SLACK, elapsed
    assert PASSWORD not in json.dumps(result)
    checks = by_id(result["checks"])
    expected = EXPECTED[(mode, tls)]
    if expected is None:
        assert result["valid"] is True, result["msg"]
        assert result["queue_id"] == QUEUE_ID
        return
    assert result["valid"] is False
    assert checks[expected[0]]["status"] == expected[1], result["msg"]


def test_overall_deadline_cuts_a_relay_that_is_slow_at_every_stage(ca_file):
    """Each reply comes within the stage timeout, but the stages add up: the overall deadline ends the probe."""
    timeout = 0.5
    with HostileSMTP("slow", "starttls", delay=0.3, users={USER: PASSWORD}) as server:
        result, elapsed = timed_probe(probe_spec(server, "starttls", ca_file, timeout=timeout))
    assert_bounded(result.checks, elapsed, timeout, one_stage_per_check=False)
    overrun = [c for c in result.checks if "overall deadline" in c["message"]]
    assert len(overrun) == 1, [(c["id"], c["message"]) for c in result.checks]
    assert overrun[0]["status"] == FAIL
    assert overrun[0]["id"].endswith(".timeout")
    assert "3s" in overrun[0]["message"]  # 6 x 0.5 s
    assert elapsed >= 0.9 * PROBE_DEADLINE_FACTOR * timeout


def test_non_ascii_ehlo_name_fails_the_ehlo_check(ca_file):
    with HostileSMTP("good", "starttls") as server:
        result, _elapsed = timed_probe(probe_spec(server, "starttls", ca_file, ehlo_name="hôte.example.test"))
    checks = by_id(result.checks)
    assert checks["smtp.ehlo_name_invalid"]["status"] == FAIL
    assert "hôte".encode("idna").decode() + ".example.test" in checks["smtp.ehlo_name_invalid"]["hint"]
    assert checks["auth.login"]["status"] == "skip"
    assert not [c for c in commands(server) if c.startswith("EHLO")]


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_non_ascii_credentials_go_out_as_utf8(mechanism, ca_file):
    user, password = "jörg", "pässwörd-€"
    with HostileSMTP("good", "starttls", users={user: password}) as server:
        spec = probe_spec(server, "starttls", ca_file, username=user, password=password,
                          permitted=lambda offered, tls: [mechanism])  # fmt: skip
        result, _elapsed = timed_probe(spec)
    checks = by_id(result.checks)
    assert checks["auth.login"]["status"] == PASS, checks["auth.login"]
    assert result.auth["mechanism"] == mechanism
    assert password not in json.dumps(result.checks)


def test_wrong_non_ascii_password_is_rejected_not_a_traceback(ca_file):
    with HostileSMTP("good", "implicit", users={USER: "other"}) as server:
        result, _elapsed = timed_probe(probe_spec(server, "implicit", ca_file, password="pässwörd"))
    assert by_id(result.checks)["auth.rejected"]["status"] == FAIL


@pytest.mark.parametrize("smtputf8", [True, False])
def test_non_ascii_sender_needs_smtputf8(smtputf8, ca_file):
    sender = "jörg@exämple.test"
    with HostileSMTP("good", "starttls", users={USER: PASSWORD}, smtputf8=smtputf8) as server:
        result, _elapsed = timed_probe(probe_spec(server, "starttls", ca_file, mail_from=sender))
    checks = by_id(result.checks)
    if smtputf8:
        assert checks["envelope.mail_from"]["status"] == PASS
        assert checks["message.sent"]["status"] == PASS
        assert f"MAIL FROM:<{sender}> SMTPUTF8" in commands(server)
        assert sender.encode() in server.messages[0]["data"]
    else:
        assert checks["envelope.smtputf8_required"]["status"] == FAIL
        assert sender in checks["envelope.smtputf8_required"]["message"]
        assert checks["envelope.rcpt_to"]["status"] == "skip"
        assert not [c for c in commands(server) if c.startswith("MAIL")]


@pytest.mark.parametrize("smtputf8", [True, False])
def test_non_ascii_recipient_needs_smtputf8(smtputf8, ca_file):
    rcpt = "bücher@example.test"
    with HostileSMTP("good", "none", users={USER: PASSWORD}, smtputf8=smtputf8) as server:
        result, _elapsed = timed_probe(probe_spec(server, "none", ca_file, rcpt_to=(rcpt,)))
    checks = by_id(result.checks)
    assert checks["envelope.mail_from"]["status"] == PASS
    if smtputf8:
        assert checks["envelope.rcpt_to"]["status"] == PASS
        assert "MAIL FROM:<sender@example.test> SMTPUTF8" in commands(server)
        assert checks["message.sent"]["status"] == PASS
    else:
        assert checks["envelope.smtputf8_required"]["status"] == FAIL
        assert checks["envelope.smtputf8_required"]["stage"] == "envelope"
        assert not [c for c in commands(server) if c.startswith("RCPT")]


def test_relay_check_run_with_non_ascii_options_reports_instead_of_raising(ca_file):
    with HostileSMTP("good", "starttls", users={"jörg": "pässwörd"}, smtputf8=False) as server:
        result = relay_check_run({"relayhost": server.relayhost, "tls": "starttls", "timeout": TIMEOUT,
                                  "ca_file": ca_file, "ehlo_name": "probe.example.test", "username": "jörg",
                                  "password": "pässwörd", "mail_from": "jörg@example.test",
                                  "rcpt_to": ["ops@example.test"]})  # fmt: skip
    checks = by_id(result["checks"])
    assert checks["auth.login"]["status"] == PASS
    assert checks["envelope.smtputf8_required"]["status"] == FAIL
    assert result["valid"] is False
    assert "pässwörd" not in json.dumps(result)


def test_auth_challenge_that_is_not_base64_is_an_auth_error(ca_file):
    with HostileSMTP("good", "starttls", users={USER: PASSWORD}, replies={"AUTH": "334 abc"}) as server:
        spec = probe_spec(server, "starttls", ca_file, permitted=lambda offered, tls: ["LOGIN"])
        result, _elapsed = timed_probe(spec)
    checks = by_id(result.checks)
    assert checks["auth.error"]["status"] == FAIL
    assert "probe.error" not in checks


def test_reconnect_after_failed_verification_checks_the_starttls_reply(tmp_path):
    """The unverified second session must not start a handshake after a refused STARTTLS."""
    with HostileSMTP("good") as other:
        other_ca = tmp_path / "other-ca.pem"
        other.ca.__class__().cert_pem.write_to_path(str(other_ca))  # a CA that did not sign the relay's certificate
    with HostileSMTP("good", "starttls", users={USER: PASSWORD}, tls_connections=1) as server:
        result, elapsed = timed_probe(probe_spec(server, "starttls", str(other_ca)))
    checks = by_id(result.checks)
    assert checks["cert.untrusted"]["status"] == FAIL
    assert checks["tls.handshake_failed"]["status"] == FAIL
    assert "454" in checks["tls.handshake_failed"]["message"]
    assert elapsed < TIMEOUT  # told at once, not after a handshake that waits for the timeout


def test_starttls_refused_by_the_relay_fails_its_check_and_nothing_else(ca_file):
    with HostileSMTP("good", "starttls", users={USER: PASSWORD}, tls_connections=0) as server:
        result, elapsed = timed_probe(probe_spec(server, "starttls", ca_file))
    checks = by_id(result.checks)
    assert checks["tls.starttls_refused"]["status"] == FAIL
    assert checks["tls.starttls_refused"]["message"] == "STARTTLS answered 454 4.7.0 TLS not available now"
    assert [c["id"] for c in result.checks if c["status"] == FAIL] == ["tls.starttls_refused"]
    assert server.connections == 1  # no reconnection, no handshake
    assert not [c for c in commands(server) if c.startswith(("AUTH", "MAIL"))]
    assert elapsed < TIMEOUT


def test_session_starttls_checks_the_reply_before_any_handshake():
    with HostileSMTP("good", "starttls", tls_connections=0) as server:
        client = SmtpSession(socket.create_connection((HOST, server.port), timeout=TIMEOUT), Clock(TIMEOUT))
        try:
            assert client.greeting().code == 220
            assert client.ehlo("probe.example.test").code == 250 and client.has_extn("starttls")
            with pytest.raises(UnexpectedReply) as info:
                client.starttls(ssl.create_default_context(), RELAY_NAME)
            assert info.value.reply.code == 454
            assert not client.tls_active
            assert client.command("NOOP").code == 250  # the session is still in clear and in step
        finally:
            client.quit()


def test_message_lines_starting_with_a_dot_are_doubled(ca_file):
    body = "first\n.\n..two dots\n.end\n"
    with HostileSMTP("good", "none", users={USER: PASSWORD}) as server:
        result, _elapsed = timed_probe(probe_spec(server, "none", ca_file, body=body))
    assert by_id(result.checks)["message.sent"]["status"] == PASS
    data = server.messages[0]["data"]
    assert b"\r\n..\r\n...two dots\r\n..end\r\n" in data  # the server keeps the stuffing: RFC 5321 4.5.2


def cram_md5_relay(sock, user, password, seen):
    """One AUTH CRAM-MD5 exchange on ``sock``, as RFC 2195 tells it; ``seen`` gets what the client sent."""
    challenge = b"<1896.697170952@relay.hostile.test>"
    with sock, sock.makefile("rwb") as f:
        seen.append(f.readline())
        f.write(b"334 " + base64.b64encode(challenge) + b"\r\n")
        f.flush()
        answer = base64.b64decode(f.readline().strip()).decode()
        seen.append(answer)
        expected = f"{user} {hmac.HMAC(password.encode(), challenge, 'md5').hexdigest()}"
        f.write(b"235 2.7.0 ok\r\n" if answer == expected else b"535 5.7.8 no\r\n")
        f.flush()


def test_session_auth_cram_md5():
    client_sock, relay_sock = socket.socketpair()
    seen: list = []
    relay = threading.Thread(target=cram_md5_relay, args=(relay_sock, USER, PASSWORD, seen), daemon=True)
    relay.start()
    client = SmtpSession(client_sock, Clock(TIMEOUT))
    try:
        assert client.auth("CRAM-MD5", USER, PASSWORD).code == 235
    finally:
        client.close()
    relay.join(TIMEOUT)
    assert seen[0] == b"AUTH CRAM-MD5\r\n"  # no initial response
    assert PASSWORD not in seen[1]
