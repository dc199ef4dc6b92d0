# SPDX-License-Identifier: GPL-3.0-or-later
"""The provider presets through the role's plan: the Microsoft 365 connector preset and the office365 warning."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.filter import _relay_settings as _filter
from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings
from ansible_collections.smtp.relay.plugins.module_utils._plan.relay import preset_warnings

CA = "/etc/ssl/certs/ca-certificates.crt"
HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": CA, "packages": ["postfix"]}
PASSWORD = "s3cret-Pa55"
CONNECTOR = {"postfix_relay_provider": "office365_connector", "postfix_relay_office365_tenant": "contoso-com"}


@pytest.fixture
def warnings(monkeypatch):
    shown = []
    monkeypatch.setattr(_filter.Display, "warning", lambda self, msg, *args, **kwargs: shown.append(msg))
    return shown


def test_connector_preset_is_the_tenant_mx_on_25_with_starttls_and_no_auth(warnings):
    got = relay_settings(CONNECTOR, host=HOST)
    cf = got["main_cf"]
    assert got["relayhost"] == cf["relayhost"] == "[contoso-com.mail.protection.outlook.com]:25"
    assert got["tls"] == "starttls" and cf["smtp_tls_wrappermode"] == "no"
    assert cf["smtp_tls_security_level"] == "secure", "the connector's certificate is verified"
    assert got["username"] == "" and cf["smtp_sasl_auth_enable"] == "no"
    assert warnings == []


def test_connector_tenant_given_as_the_whole_mx_host():
    whole = "Contoso-Com.mail.protection.outlook.com"
    got = relay_settings({**CONNECTOR, "postfix_relay_office365_tenant": whole}, HOST)
    assert got["relayhost"] == "[contoso-com.mail.protection.outlook.com]:25"


def test_explicit_variables_override_the_connector_preset():
    got = relay_settings({**CONNECTOR, "postfix_relay_port": 587, "postfix_relay_ca_file": "/etc/lab-ca.pem"}, HOST)
    assert got["relayhost"] == "[contoso-com.mail.protection.outlook.com]:587"
    assert got["main_cf"]["smtp_tls_CAfile"] == "/etc/lab-ca.pem"


@pytest.mark.parametrize(
    ("tenant", "problem"),
    [
        (None, "required with postfix_relay_provider: office365_connector"),
        ("", "required with postfix_relay_provider: office365_connector"),
        ("   ", "required with postfix_relay_provider: office365_connector"),
        ("contoso.com", "not the host label"),
        ("contoso_com", "not the host label"),
        ("-contoso", "not the host label"),
        ("contoso-com.mail.protection.outlook.org", "not the host label"),
        ("contoso\nrelayhost = evil", "line break or control character"),
    ],
)
def test_connector_tenant_missing_or_invalid_is_refused_naming_it(tenant, problem):
    variables = {**CONNECTOR, "postfix_relay_office365_tenant": tenant}
    with pytest.raises(AnsibleFilterError) as info:
        relay_settings(variables, host=HOST)
    assert info.value.message.startswith("postfix_relay_office365_tenant: "), info.value.message
    assert problem in info.value.message


def test_connector_tenant_of_another_type_is_refused_by_the_spec():
    with pytest.raises(AnsibleFilterError, match=r"^postfix_relay_office365_tenant: "):
        relay_settings({**CONNECTOR, "postfix_relay_office365_tenant": ["contoso-com"]}, host=HOST)


def test_tenant_is_ignored_by_other_presets():
    got = relay_settings({"postfix_relay_provider": "google_relay", "postfix_relay_office365_tenant": "x"}, host=HOST)
    assert got["relayhost"] == "[smtp-relay.gmail.com]:587"


def test_office365_preset_warns_in_the_play_output(warnings):
    variables = {
        "postfix_relay_provider": "office365",
        "postfix_relay_username": "alerts@example.org",
        "postfix_relay_password": PASSWORD,
    }
    got = relay_settings(variables, host=HOST)
    assert got["relayhost"] == "[smtp.office365.com]:587"
    assert len(warnings) == 1
    assert warnings[0].startswith("postfix_relay_provider office365: Microsoft 365 disables Basic SMTP AUTH")
    assert "December 2026" in warnings[0] and "office365_connector" in warnings[0]
    assert PASSWORD not in warnings[0] and "alerts@example.org" not in warnings[0]


def test_a_refused_office365_plan_is_refused_not_warned(warnings):
    with pytest.raises(AnsibleFilterError, match=r"^postfix_relay_username: "):
        relay_settings({"postfix_relay_provider": "office365"}, host=HOST)
    assert warnings == []


@pytest.mark.parametrize("provider", ["custom", "ses", "sendgrid", "mailgun", "office365_connector", "google_relay"])
def test_other_presets_do_not_warn(provider):
    assert preset_warnings({"postfix_relay_provider": provider}) == []
    assert preset_warnings({}) == []
