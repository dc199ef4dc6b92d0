# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayconf import build

CA = "/etc/ssl/certs/ca-certificates.crt"
NAMES = ["web1.example.org", "localhost"]


def plan(**spec):
    return build({"postfix_relay_host": "relay.example.org", **spec}, NAMES, CA)


def test_campus_relay_null_client():
    got = plan(
        postfix_relay_port=587,
        postfix_sender_address="noreply@dept.example.org",
        postfix_allowed_sender_domains=["dept.example.org"],
    )
    cf = got["main_cf"]
    assert cf["relayhost"] == "[relay.example.org]:587"
    assert cf["inet_interfaces"] == "loopback-only"
    assert cf["mydestination"] == ""
    assert cf["smtp_tls_security_level"] == "secure"
    assert cf["smtp_tls_wrappermode"] == "no"
    assert cf["smtp_tls_CAfile"] == CA
    assert cf["smtp_sasl_auth_enable"] == "no"
    assert got["sender_canonical"] == {
        "@web1.example.org": "noreply@dept.example.org",
        "@localhost": "noreply@dept.example.org",
    }
    assert got["sasl_key"] == ""


def test_implicit_tls_on_a_forwarded_port_with_sasl():
    got = plan(
        postfix_relay_port=30002,
        postfix_relay_tls="implicit",
        postfix_relay_username="user",
        postfix_relay_password_given=True,
    )
    assert got["main_cf"]["smtp_tls_wrappermode"] == "yes"
    assert got["main_cf"]["smtp_sasl_auth_enable"] == "yes"
    assert got["main_cf"]["smtp_sasl_security_options"] == "noanonymous"
    assert got["sasl_key"] == got["relayhost"] == "[relay.example.org]:30002"


def test_satellite_keeps_local_aliases():
    cf = plan(postfix_mode="satellite")["main_cf"]
    assert "alias_maps" in cf
    assert cf["mydestination"].startswith("$myhostname")
    assert "local_transport" not in cf


@pytest.mark.parametrize(
    ("provider", "extra", "relayhost"),
    [
        ("ses", {"postfix_relay_ses_region": "eu-west-1"}, "[email-smtp.eu-west-1.amazonaws.com]:587"),
        ("sendgrid", {}, "[smtp.sendgrid.net]:587"),
        ("mailgun", {"postfix_relay_mailgun_region": "eu"}, "[smtp.eu.mailgun.org]:587"),
        ("office365", {}, "[smtp.office365.com]:587"),
        ("gmail", {}, "[smtp.gmail.com]:587"),
    ],
)
def test_provider_presets(provider, extra, relayhost):
    spec = {"postfix_relay_provider": provider, "postfix_relay_password_given": True, **extra}
    if provider != "sendgrid":
        spec["postfix_relay_username"] = "user"
    got = build(spec, NAMES, CA)
    assert got["relayhost"] == relayhost
    assert got["username"] == ("apikey" if provider == "sendgrid" else "user")


def test_google_relay_needs_no_credentials():
    got = build({"postfix_relay_provider": "google_relay"}, NAMES, CA)
    assert got["relayhost"] == "[smtp-relay.gmail.com]:587"
    assert got["username"] == ""


def test_explicit_variables_override_the_preset():
    got = build(
        {"postfix_relay_provider": "sendgrid", "postfix_relay_port": 2525, "postfix_relay_password_given": True},
        NAMES,
        CA,
    )
    assert got["relayhost"] == "[smtp.sendgrid.net]:2525"


@pytest.mark.parametrize(
    ("spec", "variable"),
    [
        ({"postfix_relay_port": 465, "postfix_relay_tls": "starttls"}, "postfix_relay_tls"),
        ({"postfix_relay_port": 587, "postfix_relay_tls": "implicit"}, "postfix_relay_tls"),
        ({"postfix_relay_port": 30002}, "postfix_relay_tls"),
        ({"postfix_relay_host": "[relay.example.org:587]"}, "postfix_relay_host"),
        ({"postfix_relay_host": "relay.example.org\nmydestination = x"}, "postfix_relay_host"),
        ({"postfix_relay_provider": "postmark"}, "postfix_relay_provider"),
        (
            {"postfix_relay_tls": "none", "postfix_relay_username": "u", "postfix_relay_password_given": True},
            "postfix_relay_tls",
        ),
        ({"postfix_relay_username": "u"}, "postfix_relay_password"),
        ({"postfix_relay_password_given": True}, "postfix_relay_username"),
        (
            {"postfix_sender_address": "a@other.org", "postfix_allowed_sender_domains": ["dept.example.org"]},
            "postfix_sender_address",
        ),
        ({"postfix_relay_provider": "ses"}, "postfix_relay_ses_region"),
        ({"postfix_relay_provider": "ses", "postfix_relay_ses_region": "mars-1"}, "postfix_relay_ses_region"),
        ({"postfix_mode": "open_relay"}, "postfix_mode"),
        ({"postfix_sender_address": "not-an-address"}, "postfix_sender_address"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(spec, variable):
    with pytest.raises(SmtpRelayError) as info:
        plan(**spec)
    assert info.value.msg.startswith(variable + ":") or info.value.msg.startswith(variable + " ")
    assert info.value.details["variable" if "variable" in info.value.details else "field"] == variable


def test_wildcard_allows_subdomains_only_when_asked():
    ok = plan(postfix_sender_address="a@mail.example.org", postfix_allowed_sender_domains=["*.example.org"])
    assert ok["sender_domains"] == ["mail.example.org"]
    with pytest.raises(SmtpRelayError, match="outside postfix_allowed_sender_domains"):
        plan(postfix_sender_address="a@mail.example.org", postfix_allowed_sender_domains=["example.org"])
