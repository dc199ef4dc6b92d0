# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import datetime
import json
import ssl

import pytest
import trustme

from ansible_collections.smtp.relay.plugins.module_utils._probe.session import (
    MAX_LINE_BYTES,
    MAX_REPLY_BYTES,
    ProbeSpec,
    alternative_ports_hint,
    certificate_summary,
    expected_names,
    names_match,
    probe,
)

from .smtp_fakes import FakeNetwork, server_context

SECRET = "s3cr3t-Pa55"


def by_base(result):
    """Checks keyed by id; every probe check id is unique within one run."""
    ids = [c["id"] for c in result.checks]
    assert len(ids) == len(set(ids)), ids
    return {c["id"]: c for c in result.checks}


def spec(**kw):
    base = {"host": "relay.example.test", "port": 587, "tls": "none", "timeout": 2, "tls_required": False}
    return ProbeSpec(**{**base, **kw})


def net(**kw):
    return FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]}, **kw)


def test_good_plain_session_sends_test_message_and_returns_queue_id():
    network = net(relay_kwargs={"users": {"u": SECRET}})
    result = probe(spec(username="u", password=SECRET, mail_from="a@example.test", rcpt_to=("b@example.test",),
                        send_test=True), network)  # fmt: skip
    checks = by_base(result)
    for cid in ("dns.address", "tcp.connect", "smtp.banner", "smtp.ehlo", "auth.mechanisms", "auth.login",
                "envelope.mail_from", "envelope.rcpt_to", "message.sent"):  # fmt: skip
        assert checks[cid]["status"] == "pass", checks[cid]
    assert checks["tls.handshake"]["status"] == "skip"
    assert result.queue_id == "4FAKE123"
    assert result.auth["authenticated"] is True
    assert "elapsed_ms" in checks["tcp.connect"]
    assert SECRET not in json.dumps(result.checks) + json.dumps(result.auth)


def test_check_mode_skips_the_message_but_tests_the_envelope():
    network = net()
    result = probe(spec(mail_from="a@example.test", rcpt_to=("b@example.test",), send_test=True, check_mode=True),
                   network)  # fmt: skip
    checks = by_base(result)
    assert checks["envelope.rcpt_to"]["status"] == "pass"
    assert checks["message.sent"]["status"] == "skip"
    assert "DATA" not in network.relays[0].seen
    assert "RSET" in network.relays[0].seen


def test_no_address_fails_and_skips_the_rest():
    result = probe(spec(host="nowhere.example.test"), net())
    checks = by_base(result)
    assert checks["dns.no_address"]["status"] == "fail"
    assert checks["tcp.connect"]["status"] == "skip"


def test_dns_without_answer_is_unknown_not_fail():
    network = FakeNetwork(addresses={"relay.example.test": TimeoutError("no answer")})
    checks = by_base(probe(spec(), network))
    assert checks["dns.address"]["status"] == "unknown"


def test_refused_port_is_told_from_timeout_and_hints_provider_ports():
    network = FakeNetwork(addresses={"smtp.sendgrid.net": ["192.0.2.1"]}, ports={25: "refused"})
    refused = by_base(probe(spec(host="smtp.sendgrid.net", port=25), network))
    assert refused["tcp.refused"]["status"] == "fail"
    assert "2525" in refused["tcp.refused"]["hint"] and "465" in refused["tcp.refused"]["hint"]
    network = FakeNetwork(addresses={"smtp.sendgrid.net": ["192.0.2.1"]}, ports={25: "timeout"})
    timeout = by_base(probe(spec(host="smtp.sendgrid.net", port=25), network))
    assert timeout["tcp.timeout"]["reason"] == "timeout"
    assert "dropped" in timeout["tcp.timeout"]["message"]
    assert "tcp.refused" not in timeout


def test_unreachable_network():
    checks = by_base(probe(spec(), net(ports={587: "unreachable"})))
    assert checks["tcp.unreachable"]["status"] == "fail"


def test_banner_rejection_hints_at_the_allowlist():
    checks = by_base(probe(spec(), net(relay_kwargs={"greeting": "554 5.7.1 not allowed"})))
    assert checks["smtp.banner_rejected"]["status"] == "fail"
    assert "allow" in checks["smtp.banner_rejected"]["hint"]


def test_silent_server_suggests_implicit_tls():
    checks = by_base(probe(spec(port=465, tls="starttls", timeout=0.3), net(relay_kwargs={"greeting": None})))
    assert checks["smtp.no_banner"]["status"] == "fail"
    assert "implicit" in checks["smtp.no_banner"]["hint"]


def test_wrong_credentials_are_reported_without_the_password():
    network = net(relay_kwargs={"users": {"u": "other"}})
    result = probe(spec(username="u", password=SECRET), network)
    checks = by_base(result)
    assert checks["auth.rejected"]["status"] == "fail"
    assert "535" in checks["auth.rejected"]["message"]
    assert SECRET not in json.dumps(result.checks)


def test_only_permitted_mechanisms_are_tried():
    result = probe(spec(username="u", password=SECRET, permitted=lambda offered, tls: []), net())
    checks = by_base(result)
    assert checks["auth.login"]["status"] == "skip"
    assert "no_worthy_mechs" in checks["auth.login"]["message"]
    assert result.auth["offered"] == ["PLAIN", "LOGIN"]


def test_sender_rejected_stops_before_rcpt():
    network = net(relay_kwargs={"replies": {"MAIL": "553 5.7.1 sender not allowed"}})
    checks = by_base(probe(spec(mail_from="x@blocked.test", rcpt_to=("b@example.test",)), network))
    assert checks["envelope.sender_rejected"]["status"] == "fail"
    assert checks["envelope.rcpt_to"]["status"] == "skip"


def test_auth_required_hint_on_530():
    network = net(relay_kwargs={"replies": {"MAIL": "530 5.7.0 Authentication required"}})
    checks = by_base(probe(spec(mail_from="a@example.test"), network))
    assert "AUTH" in checks["envelope.sender_rejected"]["hint"]


def test_recipient_rejected():
    network = net(relay_kwargs={"replies": {"RCPT": "550 5.1.1 unknown"}})
    checks = by_base(probe(spec(mail_from="a@example.test", rcpt_to=("nobody@example.test",)), network))
    assert checks["envelope.recipient_rejected"]["status"] == "fail"
    assert "nobody@example.test" in checks["envelope.recipient_rejected"]["message"]


def test_missing_starttls_fails_when_tls_is_required_and_warns_at_may():
    network = net(relay_kwargs={"extensions": ("8BITMIME",)})
    required = by_base(probe(spec(tls="starttls", tls_required=True), network))
    assert required["tls.starttls_not_offered"]["status"] == "fail"
    optional = by_base(probe(spec(tls="starttls", tls_required=False, mail_from="a@example.test"), network))
    assert optional["tls.starttls_not_offered"]["status"] == "warn"
    assert optional["envelope.mail_from"]["status"] == "pass"


def test_mx_lookup_probes_the_lowest_preference_exchange():
    network = FakeNetwork(
        addresses={"mx1.example.test": ["192.0.2.10"]},
        mx={"example.test": [(10, "mx1.example.test"), (20, "mx2.example.test")]},
    )
    result = probe(spec(host="example.test", mx_lookup=True), network)
    checks = by_base(result)
    assert checks["dns.mx"]["status"] == "pass"
    assert result.server == "mx1.example.test"
    assert network.connects == [("192.0.2.10", 587)]


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def tls_network(cert, sni_log=None):
    return net(relay_kwargs={"extensions": ("STARTTLS", "AUTH PLAIN"), "tls_context": server_context(cert)})


def test_starttls_with_verified_certificate(ca, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = ca.issue_cert("relay.example.test")
    result = probe(spec(tls="starttls", tls_required=True, verify=True, ca_file=str(ca_file)), tls_network(cert))
    checks = by_base(result)
    assert checks["tls.handshake"]["status"] == "pass"
    assert checks["cert.chain"]["status"] == "pass"
    assert checks["cert.name"]["status"] == "pass"
    assert checks["cert.sni"]["status"] == "pass"
    assert result.tls["certificate"]["dns_names"] == ["relay.example.test"]
    assert result.auth["tls"] is True


def test_wrong_name_fails_at_verify_and_warns_at_encrypt(ca, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = ca.issue_cert("other.example.test")
    verify = by_base(probe(spec(tls="starttls", verify=True, ca_file=str(ca_file)), tls_network(cert)))
    assert verify["cert.name_mismatch"]["status"] == "fail"
    assert verify["cert.name_mismatch"]["expected"] == ["relay.example.test"]
    encrypt = by_base(probe(spec(tls="starttls", verify=False), tls_network(cert)))
    assert encrypt["cert.name_mismatch"]["status"] == "warn"
    assert encrypt["cert.chain"]["status"] == "skip"


def test_untrusted_certificate_still_reports_the_rest(tmp_path):
    other_ca, ca = trustme.CA(), trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert = other_ca.issue_cert("relay.example.test")
    result = probe(spec(tls="starttls", verify=True, ca_file=str(ca_file), mail_from="a@example.test"),
                   tls_network(cert))  # fmt: skip
    checks = by_base(result)
    assert checks["cert.untrusted"]["status"] == "fail"
    assert checks["tls.handshake"]["status"] == "pass"
    assert checks["envelope.mail_from"]["status"] == "pass"
    assert result.tls["chain_verified"] is False


def test_certificate_summary_counts_days_left():
    ca = trustme.CA()
    now = datetime.datetime.now(datetime.UTC)
    cert = ca.issue_cert("relay.example.test", "192.0.2.25", not_after=now + datetime.timedelta(days=10, hours=1))
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    summary = certificate_summary(der, now)
    assert summary["days_left"] == 10
    assert summary["expired"] is False
    assert summary["ip_addresses"] == ["192.0.2.25"]


@pytest.mark.parametrize(
    ("presented", "wanted", "match"),
    [
        (["relay.example.test"], ["relay.example.test"], "relay.example.test"),
        (["*.example.test"], ["relay.example.test"], "relay.example.test"),
        (["*.example.test"], ["a.relay.example.test"], None),
        (["relay.example.test"], [".example.test"], ".example.test"),
        (["other.test"], ["relay.example.test"], None),
    ],
)
def test_names_match_like_postfix(presented, wanted, match):
    cert = {"dns_names": presented, "ip_addresses": [], "subject": presented[0]}
    assert names_match(cert, wanted) == match


def test_expected_names_from_postfix_strategies():
    assert expected_names(["nexthop", "dot-nexthop"], "mx1.example.test", "example.test") == [
        "example.test",
        ".example.test",
    ]
    assert expected_names(["hostname"], "mx1.example.test", "example.test") == ["mx1.example.test"]


def test_alternative_ports_hint_names_the_provider_ports():
    assert "2587" in alternative_ports_hint("email-smtp.us-east-1.amazonaws.com", 587)
    assert "587" in alternative_ports_hint("mail.example.test", 25)
    assert alternative_ports_hint("mail.example.test", 587) == ""


@pytest.mark.parametrize(("length", "passes"), [(MAX_LINE_BYTES, True), (MAX_LINE_BYTES + 1, False)])
def test_greeting_line_length_limit_counts_the_line_end(length, passes):
    greeting = "220 " + "x" * (length - len("220 \r\n"))  # FakeRelay adds the CRLF
    checks = by_base(probe(spec(), net(relay_kwargs={"greeting": greeting})))
    if passes:
        assert checks["smtp.banner"]["status"] == "pass"
    else:
        assert checks["smtp.reply_too_large"]["status"] == "fail"
        assert f"longer than {MAX_LINE_BYTES} bytes" in checks["smtp.reply_too_large"]["message"]


@pytest.mark.parametrize(("lines", "passes"), [(MAX_REPLY_BYTES // 1024, True), (MAX_REPLY_BYTES // 1024 + 1, False)])
def test_multiline_reply_size_limit(lines, passes):
    line = "x" * (1024 - len("220-\r\n"))
    greeting = "\r\n".join([f"220-{line}"] * (lines - 1) + [f"220 {line}"])
    checks = by_base(probe(spec(), net(relay_kwargs={"greeting": greeting})))
    if passes:
        assert checks["smtp.banner"]["status"] == "pass"
    else:
        assert checks["smtp.reply_too_large"]["status"] == "fail"
        assert checks["smtp.ehlo"]["status"] == "skip"


def test_garbage_greeting_is_not_smtp():
    checks = by_base(probe(spec(), net(relay_kwargs={"greeting": "\x00\x01 hello \ufffd"})))
    assert checks["smtp.not_smtp"]["status"] == "fail"


def test_ehlo_name_with_a_space_or_control_character_is_refused_before_sending():
    network = net()
    checks = by_base(probe(spec(ehlo_name="host\r\nMAIL FROM:<x@y>"), network))
    assert checks["smtp.ehlo_name_invalid"]["status"] == "fail"
    assert "EHLO" not in network.relays[0].seen
