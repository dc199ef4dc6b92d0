# SPDX-License-Identifier: GPL-3.0-or-later
"""Allowlist requests sent by mail (``_allowlist.send``) through the one SMTP session, against a scripted relay with
a trustme certificate: verified TLS or nothing sent; the send options refused by name."""

from __future__ import annotations

import pytest
import trustme

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.request import allowlist_request
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.send import validate_sending
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from tests.unit.plugins.module_utils.allowlist_fakes import ROUTES, FakeHost, dns_ok
from tests.unit.plugins.module_utils.smtp_fakes import FakeNetwork, server_context

PASSWORD = "s3cret-Pw-for-the-test"
BASE = {"purpose": "Order mails", "team": "Shop", "contact": "shop-ops@example.org", "relay_host": "relay.example.test"}


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def network(cert, extensions=("STARTTLS", "AUTH PLAIN LOGIN"), replies=None):
    return FakeNetwork(
        relay_kwargs={
            "extensions": extensions,
            "tls_context": server_context(cert),
            "users": {"bot": PASSWORD},
            "replies": replies or {},
        }
    )


def sending(ca, **overrides):
    return {
        "send": True,
        "smtp_host": "smtp.example.test",
        "smtp_port": 587,
        "ca_file": ca,
        "smtp_username": "bot",
        "smtp_password": PASSWORD,
        "mail_from": "allowlist@example.org",
        "mail_to": ["relay-owners@example.net"],
        **overrides,
    }


def send(net, check_mode=False, **options):
    params = {**BASE, **options}
    return allowlist_request(params, FakeHost(routes=ROUTES), dns_ok(), check_mode, connect=net.connect)


def verbs(net):
    return [verb for relay in net.relays for verb in relay.seen]


def test_sent_over_verified_starttls_with_auth(ca, ca_file):
    net = network(ca.issue_cert("smtp.example.test"))
    result = send(net, **sending(ca_file, mail_cc=["Copy@Example.ORG"]))
    assert result["changed"] is True
    assert result["sent"]["sent"] is True
    assert result["sent"]["tls"].startswith("TLSv1.")
    assert result["sent"]["to"] == ["relay-owners@example.net"]
    assert result["sent"]["cc"] == ["Copy@example.org"]
    assert "queued as 4FAKE123" in result["sent"]["reply"]
    assert verbs(net) == ["EHLO", "STARTTLS", "EHLO", "AUTH", "MAIL", "RCPT", "RCPT", "DATA", "QUIT"]
    assert net.connects == [("smtp.example.test", 587)]


@pytest.mark.parametrize(
    "case",
    [
        ("other.example.test", True, "smtp_host", "mismatch"),
        ("smtp.example.test", False, "ca_file", "unable to get local issuer certificate"),
    ],
    ids=["another name", "unknown CA"],
)
def test_a_certificate_that_does_not_verify_sends_nothing(ca, ca_file, case):
    issued_for, trusted, field, words = case
    issuer = ca if trusted else trustme.CA()
    net = network(issuer.issue_cert(issued_for))
    with pytest.raises(SmtpRelayError) as refused:
        send(net, **sending(ca_file))
    assert refused.value.details["field"] == field
    assert refused.value.details["sent"] is False
    assert "not sent" in refused.value.msg and words in refused.value.msg
    assert "AUTH" not in verbs(net) and "MAIL" not in verbs(net)
    assert PASSWORD not in refused.value.msg


def test_no_starttls_offered_sends_nothing_in_clear(ca, ca_file):
    net = network(ca.issue_cert("smtp.example.test"), extensions=("AUTH PLAIN",))
    with pytest.raises(SmtpRelayError, match="never sent in clear"):
        send(net, **sending(ca_file))
    assert "AUTH" not in verbs(net) and "MAIL" not in verbs(net)


def test_rejected_credentials_name_the_user_option_never_the_password(ca, ca_file):
    net = network(ca.issue_cert("smtp.example.test"))
    with pytest.raises(SmtpRelayError) as refused:
        send(net, **sending(ca_file, smtp_password="wrong-" + PASSWORD))
    assert refused.value.details["field"] == "smtp_username"
    assert PASSWORD not in refused.value.msg and PASSWORD not in repr(refused.value.details)
    assert "MAIL" not in verbs(net)


def test_one_refused_recipient_and_the_mail_goes_to_nobody(ca, ca_file):
    net = network(ca.issue_cert("smtp.example.test"), replies={"RCPT": "550 5.1.1 no such user"})
    with pytest.raises(SmtpRelayError, match="RCPT TO"):
        send(net, **sending(ca_file))
    assert "DATA" not in verbs(net) and "RSET" in verbs(net)


def test_check_mode_connects_to_nothing_and_says_what_would_be_sent(ca, ca_file):
    net = network(ca.issue_cert("smtp.example.test"))
    result = send(net, check_mode=True, **sending(ca_file))
    assert result["changed"] is True
    assert result["sent"]["sent"] is False and result["sent"]["to"] == ["relay-owners@example.net"]
    assert net.connects == []


def test_a_refused_request_is_never_sent(ca, ca_file):
    net = network(ca.issue_cert("smtp.example.test"))
    with pytest.raises(SmtpRelayError, match=r"fqdn\.forward_mismatch"):
        send(net, ipv4=["10.89.0.99"], **sending(ca_file))
    assert net.connects == []


def test_a_request_given_whole_is_sent_as_it_is(ca, ca_file):
    built = allowlist_request({**BASE, "volume_per_day": 50}, FakeHost(routes=ROUTES), dns_ok())["request"]
    net = network(ca.issue_cert("smtp.example.test"))
    result = allowlist_request({"request": built, **sending(ca_file)}, FakeHost(), connect=net.connect)
    assert result["request"] == built
    assert result["checks"] == [] and result["sent"]["sent"] is True


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"smtp_host": None}, "smtp_host"),
        ({"smtp_host": "bad host"}, "smtp_host"),
        ({"smtp_tls": "none"}, "smtp_tls"),
        ({"smtp_port": 0}, "smtp_port"),
        ({"mail_from": None}, "mail_from"),
        ({"mail_from": "not-an-address"}, "mail_from"),
        ({"mail_to": []}, "mail_to"),
        ({"mail_to": ["a@example.org\r\nBcc: x@example.org"]}, "mail_to"),
        ({"mail_cc": ["nobody"]}, "mail_cc"),
        ({"smtp_password": None}, "smtp_username"),
        ({"smtp_username": "bot\n"}, "smtp_username"),
        ({"ca_file": ""}, "ca_file"),
        ({"send": "yes"}, "send"),
    ],
)
def test_bad_send_options_are_refused_by_name_before_anything_is_looked_up(ca_file, options, field):
    with pytest.raises(SmtpRelayError) as refused:
        validate_sending(sending(ca_file, **options), 5.0)
    assert refused.value.details["field"] == field
    assert field in refused.value.msg


def test_a_bad_password_is_refused_without_showing_it(ca_file):
    with pytest.raises(SmtpRelayError) as refused:
        validate_sending(sending(ca_file, smtp_password=PASSWORD + "\n"), 5.0)
    assert refused.value.details["field"] == "smtp_password"
    assert PASSWORD not in refused.value.msg


def test_an_unreadable_ca_file_is_refused_by_name(tmp_path, ca):
    net = network(ca.issue_cert("smtp.example.test"))
    with pytest.raises(SmtpRelayError) as refused:
        send(net, **sending(str(tmp_path / "missing.pem")))
    assert refused.value.details["field"] == "ca_file"
    assert net.connects == []


def test_no_send_no_send_options_checked():
    assert validate_sending({"send": False, "smtp_tls": "bogus"}, 5.0) is None
