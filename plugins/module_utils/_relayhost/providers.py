# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what it knows of relay providers, in one table.

One entry per provider, whoever asks: the role's presets (``postfix_relay_provider``: host, port, TLS mode,
AUTH, user name, the warning a preset gives), the probe's hint about other ports (recognised by relay host name),
sender_check's SPF include (``provider``), and Amazon SES's regions, endpoints and SMTP password derivation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import shown
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import is_hostname, secret_problem


@dataclass(frozen=True)
class Provider:
    """A relay provider. ``host`` is None where the host depends on a region (see ``regions``)."""

    key: str  # the value of postfix_relay_provider and of sender_check's provider
    name: str  # as people call it, in hints
    host: str | None = None  # the preset relay host
    regions: dict = field(default_factory=dict, hash=False)  # region -> relay host, where the provider has several
    host_suffixes: tuple = ()  # relay host names (and their subdomains) that are this provider's
    starttls_ports: tuple = ()  # the preferred port first
    implicit_ports: tuple = ()
    auth: bool = True  # whether the relay needs AUTH (a SASL user name)
    username: str | None = None  # the fixed SASL user name, when the provider has one
    spf_include: str | None = None  # the domain its senders' SPF records include
    notice: str | None = None  # what every user of the preset must be told (shown as a warning by the role)


# The tenant's MX endpoint is <label>.mail.protection.outlook.com (for contoso.com: contoso-com).
OFFICE365_MX_SUFFIX = "mail.protection.outlook.com"

# Ports and hosts from each provider's SMTP documentation (see the README of the smtp.relay.postfix role).
# The order is the order of postfix_relay_provider's and sender_check's provider choices in messages.
_TABLE = (
    Provider(
        key="ses",
        name="Amazon SES",
        host_suffixes=("amazonaws.com",),
        starttls_ports=(587, 2587, 25),
        implicit_ports=(465, 2465),
        spf_include="amazonses.com",
    ),
    Provider(
        key="sendgrid",
        name="SendGrid",
        host="smtp.sendgrid.net",
        host_suffixes=("sendgrid.net",),
        starttls_ports=(587, 2525, 25),
        implicit_ports=(465,),
        username="apikey",
        spf_include="sendgrid.net",
    ),
    Provider(
        key="mailgun",
        name="Mailgun",
        host="smtp.mailgun.org",
        regions={"us": "smtp.mailgun.org", "eu": "smtp.eu.mailgun.org"},
        host_suffixes=("mailgun.org",),
        starttls_ports=(587, 2525, 25),
        implicit_ports=(465,),
        spf_include="mailgun.org",
    ),
    Provider(
        key="office365",
        name="Microsoft 365",
        host="smtp.office365.com",
        host_suffixes=("office365.com",),
        starttls_ports=(587,),
        spf_include="spf.protection.outlook.com",
        notice=(
            "Microsoft 365 disables Basic SMTP AUTH (user name and password, which this preset uses) by default "
            "for existing tenants at the end of December 2026; unless the tenant keeps it enabled, mail through "
            "smtp.office365.com then fails with 535. Move to postfix_relay_provider: office365_connector (the "
            "tenant's MX endpoint on port 25, STARTTLS, no AUTH, admitted by a connector keyed on the sender's "
            "public IP)"
        ),
    ),
    # Microsoft's supported alternative to Basic AUTH for devices and applications: direct send to the tenant's
    # MX endpoint (<tenant>.mail.protection.outlook.com), admitted by an inbound connector keyed on the sender's
    # public IP. The host depends on the tenant: see office365_connector_host.
    Provider(
        key="office365_connector",
        name="Microsoft 365 connector",
        host_suffixes=(OFFICE365_MX_SUFFIX,),
        starttls_ports=(25,),
        auth=False,
        spf_include="spf.protection.outlook.com",
    ),
    Provider(
        key="google_relay",
        name="Google Workspace relay",
        host="smtp-relay.gmail.com",
        host_suffixes=("smtp-relay.gmail.com",),
        starttls_ports=(587,),
        auth=False,
        spf_include="_spf.google.com",
    ),
    Provider(
        key="gmail",
        name="Gmail",
        host="smtp.gmail.com",
        host_suffixes=("smtp.gmail.com",),
        starttls_ports=(587,),
        implicit_ports=(465,),
        spf_include="_spf.google.com",
    ),
    # Any other relay: nothing is preset or checked.
    Provider(key="custom", name="custom relay", auth=False),
)

PROVIDERS = {provider.key: provider for provider in _TABLE}
CUSTOM = "custom"

# Regions with an SES SMTP endpoint (email-smtp.REGION.amazonaws.com), from the SES endpoint table.
SES_SMTP_REGIONS = frozenset(
    {
        "us-east-1", "us-east-2", "us-west-1", "us-west-2",
        "af-south-1",
        "ap-south-1", "ap-south-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
        "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-5",
        "ca-central-1", "ca-west-1",
        "eu-central-1", "eu-central-2", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "eu-south-1",
        "il-central-1", "me-central-1", "me-south-1", "sa-east-1",
        "us-gov-east-1", "us-gov-west-1",
    }
)  # fmt: skip


def role_preset(key: str) -> dict:
    """The role's preset for a provider: {host, port, tls, auth, username}, only the keys it fixes.

    Explicit role variables override every key; a provider whose host depends on a region has no host here.
    The custom provider fixes nothing.
    """
    provider = PROVIDERS[key]
    if key == CUSTOM:
        return {}
    result = {"port": provider.starttls_ports[0], "tls": "starttls", "auth": provider.auth}
    if provider.host:
        result["host"] = provider.host
    if provider.username:
        result["username"] = provider.username
    return result


def office365_connector_host(tenant) -> str:
    """The tenant's MX endpoint from its host label (``contoso-com`` -> contoso-com.mail.protection.outlook.com)."""
    label = tenant.strip().lower() if isinstance(tenant, str) else tenant
    if isinstance(label, str) and label.endswith("." + OFFICE365_MX_SUFFIX):
        label = label[: -len(OFFICE365_MX_SUFFIX) - 1]  # the whole MX host name, as the admin center shows it
    if not isinstance(label, str) or "." in label or not is_hostname(label):
        raise SmtpRelayError(
            f"{shown(tenant)} is not the host label of a Microsoft 365 MX endpoint",
            field="tenant",
        )
    return f"{label}.{OFFICE365_MX_SUFFIX}"


def provider_notice(key: str | None) -> str | None:
    """What the role must tell every user of a preset (a deprecation), or None."""
    provider = PROVIDERS.get(key or CUSTOM)
    return provider.notice if provider else None


def spf_include(key: str | None) -> str | None:
    """The domain a provider's senders must include in their SPF record; None for custom or no provider."""
    provider = PROVIDERS.get(key or CUSTOM)
    return provider.spf_include if provider else None


def provider_ports(host: str):
    """(provider name, STARTTLS ports, implicit ports) for a known provider's relay host, else None."""
    host = host.lower().rstrip(".")
    suffixes = [(suffix, provider) for provider in _TABLE for suffix in provider.host_suffixes]
    for suffix, provider in sorted(suffixes, key=lambda item: -len(item[0])):
        if host == suffix or host.endswith("." + suffix):
            return provider.name, provider.starttls_ports, provider.implicit_ports
    return None


def ses_endpoint(region: str) -> str:
    _check_ses_region(region)
    return f"email-smtp.{region}.amazonaws.com"


def _check_ses_region(region) -> None:
    if not isinstance(region, str):
        raise SmtpRelayError(f"region must be text like eu-west-1, got {shown(region)}", field="region")
    if region not in SES_SMTP_REGIONS:
        raise SmtpRelayError(
            f"region {shown(region)} has no Amazon SES SMTP endpoint; "
            f"known regions: {', '.join(sorted(SES_SMTP_REGIONS))}",
            field="region",
        )


def ses_smtp_password(secret_access_key: str, region: str) -> str:
    """AWS secret access key -> SES SMTP password (version 4 signature over a fixed message)."""
    _check_ses_region(region)
    if not isinstance(secret_access_key, str) or not secret_access_key:
        raise SmtpRelayError("the AWS secret access key must be a non-empty string", field="secret_access_key")
    problem = secret_problem(secret_access_key)
    if problem:
        # The role refuses the same key in postfix_relay_ses_secret_access_key: one rule (grammar.secret_problem).
        raise SmtpRelayError(f"the AWS secret access key: {problem}", field="secret_access_key")

    def sign(key: bytes, message: str) -> bytes:
        return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()

    key = sign(("AWS4" + secret_access_key).encode("utf-8"), "11111111")
    for part in (region, "ses", "aws4_request", "SendRawEmail"):
        key = sign(key, part)
    return base64.b64encode(b"\x04" + key).decode("ascii")
