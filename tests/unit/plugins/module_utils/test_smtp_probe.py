# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import trustme

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._dns import make_resolver
from ansible_collections.smtp.relay.plugins.module_utils._optional import OptionalLibrary
from ansible_collections.smtp.relay.plugins.module_utils._probe import stages
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import MAX_LINE_BYTES, MAX_REPLY_BYTES
from ansible_collections.smtp.relay.plugins.module_utils._probe.stages import ProbeSpec, alternative_ports_hint

from .dns_fakes import StaticBackend
from .smtp_fakes import FakeNetwork, server_context

SECRET = "s3cr3t-Pa55"


def by_base(result):
    """Checks keyed by id; every probe check id is unique within one run."""
    ids = [c["id"] for c in result.checks]
    assert len(ids) == len(set(ids)), ids
    return {c["id"]: c for c in result.checks}


def probe(probe_spec, network):
    """The probe with the fake network's seams."""
    return stages.probe(probe_spec, **network.seams())


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
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]}, timeouts=["relay.example.test"])
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


# -- STARTTLS refused --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reply", ["454 4.7.0 TLS not available due to local problem", "502 5.5.1 not here"])
def test_starttls_answered_without_220_is_refused_before_any_handshake(reply, ca):
    network = net(relay_kwargs={"extensions": ("STARTTLS",), "replies": {"STARTTLS": reply},
                                "tls_context": server_context(ca.issue_cert("relay.example.test"))})  # fmt: skip
    result = probe(spec(tls="starttls", tls_required=True, mail_from="a@example.test"), network)
    checks = by_base(result)
    refused = checks["tls.starttls_refused"]
    assert refused["status"] == "fail"
    assert refused["message"] == f"STARTTLS answered {reply}"
    assert "probe.error" not in checks
    assert all(checks[c]["status"] == "skip" for c in ("cert.chain", "cert.name", "auth.login", "envelope.mail_from"))
    assert result.tls == {}
    assert network.relays[0].seen == ["EHLO", "STARTTLS"]  # nothing sent after the refusal, no handshake tried


# -- DNS through the one resolver seam ---------------------------------------------------------------------------


def test_addresses_come_from_the_resolver_a_and_aaaa():
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25", "2001:db8::25"]})
    checks = by_base(probe(spec(), network))
    assert checks["dns.address"]["addresses"] == ["192.0.2.25", "2001:db8::25"]
    assert {("relay.example.test", "A"), ("relay.example.test", "AAAA")} <= set(network.backend.asked)


def test_an_address_is_enough_when_the_other_family_has_no_answer():
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]}, timeouts=[("relay.example.test", "AAAA")])
    checks = by_base(probe(spec(), network))
    assert checks["dns.address"]["status"] == "pass"
    assert network.connects == [("192.0.2.25", 587)]


def test_no_address_with_one_question_unanswered_is_unknown():
    network = FakeNetwork(timeouts=[("relay.example.test", "AAAA")])
    checks = by_base(probe(spec(), network))
    assert checks["dns.address"]["status"] == "unknown"
    assert "AAAA: no answer (static)" in checks["dns.address"]["message"]
    assert checks["tcp.connect"]["status"] == "skip"


def test_mx_without_answer_is_unknown():
    network = FakeNetwork(timeouts=[("example.test", "MX")])
    checks = by_base(probe(spec(host="example.test", mx_lookup=True), network))
    assert checks["dns.mx"]["status"] == "unknown"
    assert checks["dns.address"]["status"] == "skip"


def test_no_mx_falls_back_to_the_name_itself():
    network = FakeNetwork(addresses={"example.test": ["192.0.2.9"]})
    result = probe(spec(host="example.test", mx_lookup=True), network)
    checks = by_base(result)
    assert checks["dns.no_mx"]["status"] == "warn"
    assert result.server == "example.test"
    assert network.connects == [("192.0.2.9", 587)]


class SlowBackend:
    """A DNS that answers after ``delay`` seconds, longer than any stage may wait."""

    def __init__(self, delay):
        self.delay = delay

    def lookup(self, name, rdtype, timeout):
        time.sleep(self.delay)
        return StaticBackend({(name, rdtype): ["192.0.2.25"]}).lookup(name, rdtype, timeout)


def test_a_slow_dns_is_cut_at_the_stage_timeout():
    # The resolver's own per-question timeout is longer: the stage bound holds whatever the resolver does.
    resolver = make_resolver(backend=SlowBackend(1.5), timeout=5)
    started = time.monotonic()
    result = stages.probe(spec(timeout=0.3), resolver, FakeNetwork().connect)
    elapsed = time.monotonic() - started
    checks = by_base(result)
    assert checks["dns.address"]["status"] == "unknown"
    assert "no complete answer within 0.3s" in checks["dns.address"]["message"]
    assert elapsed < 0.3 + 0.35


def test_mx_lookup_through_the_hosts_resolver_without_dnspython_is_unknown(monkeypatch):
    monkeypatch.setattr(_dns, "DNSPYTHON", OptionalLibrary("dnspython", "python3-dnspython", "ImportError"))
    result = stages.probe(spec(host="example.org", mx_lookup=True), make_resolver(timeout=1, system=True))
    check = by_base(result)["dns.mx"]
    assert check["status"] == "unknown"
    assert "dnspython is not installed on the host: MX records cannot be read" in check["message"]


def test_the_probe_uses_public_apis_only():
    """No smtplib internals, no CPython-private certificate decoder: nothing of ssl or socket that starts with _."""
    sources = Path(stages.__file__).parent.glob("*.py")
    for source in sources:
        text = source.read_text()
        assert not re.search(r"^\s*(import|from)\s+smtplib", text, re.MULTILINE), source
        assert not re.search(r"\b(ssl|socket|smtplib)\._", text), source
