# SPDX-License-Identifier: GPL-3.0-or-later
"""The one provider table: what each consumer (role presets, probe hints, SPF includes, SES) reads from it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ansible_collections.smtp.relay.plugins.module_utils._plan import relay as _plan

from ansible_collections.smtp.relay.plugins.module_utils._relayhost import providers as _providers

from ansible_collections.smtp.relay.plugins.module_utils._sender import engine as _sender

from ansible_collections.smtp.relay.plugins.module_utils._probe import net_stages as _smtp_probe
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.providers import (
    PROVIDERS,
    office365_connector_host,
    provider_notice,
    provider_ports,
    role_preset,
    ses_endpoint,
    ses_smtp_password,
    spf_include,
)
from ansible_collections.smtp.relay.plugins.modules import sender_check

ROOT = Path(__file__).resolve().parents[4]
ORDER = ["ses", "sendgrid", "mailgun", "office365", "office365_connector", "google_relay", "gmail", "custom"]


def test_one_table_in_one_order():
    assert list(PROVIDERS) == ORDER
    # The consumers take the table, not a copy of it.
    assert tuple(ORDER) == _sender.PROVIDERS
    assert _plan.PROVIDERS is PROVIDERS
    assert _smtp_probe.provider_ports is provider_ports


def test_role_presets():
    starttls = {"port": 587, "tls": "starttls"}
    assert {key: role_preset(key) for key in PROVIDERS} == {
        "ses": {**starttls, "auth": True},
        "sendgrid": {**starttls, "host": "smtp.sendgrid.net", "auth": True, "username": "apikey"},
        "mailgun": {**starttls, "host": "smtp.mailgun.org", "auth": True},
        "office365": {**starttls, "host": "smtp.office365.com", "auth": True},
        "office365_connector": {"port": 25, "tls": "starttls", "auth": False},
        "google_relay": {**starttls, "host": "smtp-relay.gmail.com", "auth": False},
        "gmail": {**starttls, "host": "smtp.gmail.com", "auth": True},
        "custom": {},
    }
    # Callers change their copy (the SES host comes from the region), never the table.
    role_preset("ses")["host"] = "changed"
    assert "host" not in role_preset("ses")
    assert PROVIDERS["mailgun"].regions == {"us": "smtp.mailgun.org", "eu": "smtp.eu.mailgun.org"}


def test_spf_includes():
    assert {key: spf_include(key) for key in PROVIDERS} == {
        "ses": "amazonses.com",
        "sendgrid": "sendgrid.net",
        "mailgun": "mailgun.org",
        "office365": "spf.protection.outlook.com",
        "office365_connector": "spf.protection.outlook.com",
        "google_relay": "_spf.google.com",
        "gmail": "_spf.google.com",
        "custom": None,
    }
    assert spf_include(None) is None
    assert spf_include("unknown") is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("email-smtp.eu-west-1.amazonaws.com", ("Amazon SES", (587, 2587, 25), (465, 2465))),
        ("smtp.sendgrid.net", ("SendGrid", (587, 2525, 25), (465,))),
        ("SMTP.EU.MAILGUN.ORG.", ("Mailgun", (587, 2525, 25), (465,))),
        ("smtp.office365.com", ("Microsoft 365", (587,), ())),
        ("contoso-com.mail.protection.outlook.com", ("Microsoft 365 connector", (25,), ())),
        ("mail.protection.outlook.com.example.test", None),
        ("smtp-relay.gmail.com", ("Google Workspace relay", (587,), ())),
        ("smtp.gmail.com", ("Gmail", (587,), (465,))),
        ("mail.example.test", None),
        ("notamazonaws.com", None),
    ],
)
def test_provider_ports_by_host(host, expected):
    assert provider_ports(host) == expected


def test_preset_hosts_are_recognised_by_the_probe():
    for provider in PROVIDERS.values():
        for host in filter(None, (provider.host, *provider.regions.values())):
            assert provider_ports(host)[0] == provider.name
    assert provider_ports(ses_endpoint("eu-west-1"))[0] == PROVIDERS["ses"].name
    assert provider_ports(office365_connector_host("contoso-com"))[0] == PROVIDERS["office365_connector"].name


@pytest.mark.parametrize(
    ("tenant", "host"),
    [
        ("contoso-com", "contoso-com.mail.protection.outlook.com"),
        (" Contoso-COM ", "contoso-com.mail.protection.outlook.com"),
        ("contoso-com.mail.protection.outlook.com", "contoso-com.mail.protection.outlook.com"),
        ("x1", "x1.mail.protection.outlook.com"),
    ],
)
def test_office365_connector_host(tenant, host):
    assert office365_connector_host(tenant) == host


@pytest.mark.parametrize(
    "tenant",
    ["", "contoso.com", "-contoso", "contoso-", "con toso", "a" * 64, "contoso_com", "[contoso]", None, 7,
     ".mail.protection.outlook.com", "a.b.mail.protection.outlook.com", "contoso-com.mail.protection.outlook.org"],
)  # fmt: skip
def test_office365_connector_host_refuses_what_is_not_one_label(tenant):
    with pytest.raises(SmtpRelayError, match="not the host label of a Microsoft 365 MX endpoint"):
        office365_connector_host(tenant)


def test_only_office365_carries_a_notice():
    assert {key for key in PROVIDERS if provider_notice(key)} == {"office365"}
    notice = provider_notice("office365")
    assert "December 2026" in notice and "office365_connector" in notice and "Basic SMTP AUTH" in notice
    assert provider_notice(None) is None and provider_notice("unknown") is None


def test_the_provider_choices_documented_elsewhere_are_the_table():
    spec = yaml.safe_load((ROOT / "roles/postfix/meta/argument_specs.yml").read_text())
    role_choices = spec["argument_specs"]["main"]["options"]["postfix_relay_provider"]["choices"]
    assert sorted(role_choices) == sorted(PROVIDERS)
    option = yaml.safe_load(sender_check.DOCUMENTATION)["options"]["provider"]
    assert option["choices"] == list(PROVIDERS)
    description = " ".join(option["description"])
    for key in PROVIDERS:
        if spf_include(key):
            assert f"V({key})" in description
            assert f"C({spf_include(key)})" in description


EXAMPLE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.mark.parametrize(
    ("region", "password"),
    [
        ("us-east-1", "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"),
        ("eu-west-1", "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk"),
    ],
)
def test_ses_password_vectors(region, password):
    assert ses_smtp_password(EXAMPLE_SECRET, region) == password


@pytest.mark.parametrize("region", ["ap-east-1", "cn-north-1", "mars-1", "", "US-EAST-1"])
def test_ses_region_without_endpoint_refused(region):
    with pytest.raises(SmtpRelayError, match="no Amazon SES SMTP endpoint"):
        ses_smtp_password(EXAMPLE_SECRET, region)


def test_ses_empty_secret_refused_without_echo():
    with pytest.raises(SmtpRelayError, match="secret access key") as info:
        ses_smtp_password("", "eu-west-1")
    assert "details" not in info.value.msg


@pytest.mark.parametrize(
    "secret",
    [
        EXAMPLE_SECRET + "\n",
        " " + EXAMPLE_SECRET,
        EXAMPLE_SECRET[:20] + "\n" + EXAMPLE_SECRET[20:],
        EXAMPLE_SECRET + "\udcff",
    ],
)
def test_ses_secret_of_the_wrong_shape_refused_without_echo(secret):
    """The planner's rule for postfix_relay_ses_secret_access_key: a key read from a file with its newline would
    sign another password than the one the key has in AWS."""
    with pytest.raises(SmtpRelayError, match="secret access key") as info:
        ses_smtp_password(secret, "eu-west-1")
    assert EXAMPLE_SECRET[:20] not in info.value.msg and EXAMPLE_SECRET[20:] not in info.value.msg


@pytest.mark.parametrize("region", [["eu-west-1"], None, 5, {"eu-west-1": 1}])
def test_ses_region_that_is_not_text_refused(region):
    with pytest.raises(SmtpRelayError, match="region must be text") as info:
        ses_smtp_password(EXAMPLE_SECRET, region)
    assert info.value.details == {"field": "region"}


def test_ses_endpoint():
    assert ses_endpoint("eu-west-1") == "email-smtp.eu-west-1.amazonaws.com"
    assert {"us-east-1", "eu-west-1"} <= _providers.SES_SMTP_REGIONS
