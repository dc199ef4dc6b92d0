# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the relay of the plan (host, port, TLS, provider preset) and its SASL user."""

from __future__ import annotations

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._plan.inputs import text_variable, variable_error
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    format_relayhost,
    implied_tls,
    parse_port,
    secret_problem,
)
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.providers import (
    PROVIDERS,
    office365_connector_host,
    provider_notice,
    role_preset,
    ses_endpoint,
)

DEFAULT_PORT = 587


def relay_settings(variables: dict) -> dict:
    provider = variables.get("postfix_relay_provider") or "custom"
    if provider not in PROVIDERS:
        raise variable_error(
            "postfix_relay_provider", f"unknown provider {provider!r}", "accepted: " + ", ".join(PROVIDERS)
        )
    # The provider's preset (_providers): explicit role variables override every key.
    preset = role_preset(provider)
    if provider == "ses":
        region = text_variable(variables, "postfix_relay_ses_region")
        if not region:
            raise variable_error(
                "postfix_relay_ses_region", "required with postfix_relay_provider: ses", "for example eu-west-1"
            )
        try:
            preset["host"] = ses_endpoint(region)
        except SmtpRelayError as e:
            raise variable_error("postfix_relay_ses_region", e.msg) from None
    if provider == "mailgun":
        region = text_variable(variables, "postfix_relay_mailgun_region") or "us"
        hosts = PROVIDERS["mailgun"].regions
        if region not in hosts:
            raise variable_error(
                "postfix_relay_mailgun_region", f"unknown region {region!r}", "accepted: " + ", ".join(hosts)
            )
        preset["host"] = hosts[region]
    if provider == "office365_connector":
        preset["host"] = _office365_tenant_host(variables)
    host = text_variable(variables, "postfix_relay_host") or preset.get("host", "")
    if not host:
        raise variable_error(
            "postfix_relay_host", "no relay host given", "set it, or choose a postfix_relay_provider preset"
        )
    port = variables.get("postfix_relay_port")
    port = preset.get("port", DEFAULT_PORT) if port is None else port
    try:
        port = parse_port(port)
    except SmtpRelayError as e:
        raise variable_error("postfix_relay_port", e.msg, "a port is 1-65535") from None
    primary = {"host": host, "port": port, "mx_lookup": bool(variables.get("postfix_relay_mx_lookup"))}
    try:
        relayhost = format_relayhost(primary)
    except SmtpRelayError as e:
        raise variable_error(
            "postfix_relay_host",
            e.msg,
            "postfix_relay_host is a bare host name or IP, the port goes in postfix_relay_port",
        ) from None
    backups = []
    for index, backup in enumerate(variables.get("postfix_relay_backup_hosts") or []):
        entry = {k: v for k, v in dict(backup).items() if v is not None}
        entry.setdefault("port", port)
        try:
            backups.append(format_relayhost(entry))
        except SmtpRelayError as e:
            raise variable_error(
                f"postfix_relay_backup_hosts[{index}]", e.msg, "each is {host, port, mx_lookup}"
            ) from None
    tls = variables.get("postfix_relay_tls") or preset.get("tls") or implied_tls(port)
    if tls is None:
        raise variable_error(
            "postfix_relay_tls",
            f"port {port} does not tell whether the relay expects STARTTLS or implicit TLS",
            "set postfix_relay_tls to starttls, implicit or none (a port-forward to 465 is implicit)",
        )
    return {
        "provider": provider,
        "preset": preset,
        "relayhost": ", ".join([relayhost, *backups]),
        "tls": tls,
    }


def _office365_tenant_host(variables: dict) -> str:
    tenant = text_variable(variables, "postfix_relay_office365_tenant")
    if not tenant:
        raise variable_error(
            "postfix_relay_office365_tenant",
            "required with postfix_relay_provider: office365_connector",
            "the host label of the tenant's MX endpoint, for example contoso-com for contoso-com.mail.protection."
            "outlook.com (the MX record of the tenant's accepted domain)",
        )
    try:
        return office365_connector_host(tenant)
    except SmtpRelayError as e:
        raise variable_error(
            "postfix_relay_office365_tenant",
            e.msg,
            "one DNS label (letters, digits, hyphens), for example contoso-com for contoso-com.mail.protection."
            "outlook.com",
        ) from None


def preset_warnings(variables: dict) -> list[str]:
    """What the role tells the operator about the chosen preset (a provider's deprecation), one sentence each."""
    notice = provider_notice(variables.get("postfix_relay_provider"))
    return [f"postfix_relay_provider {variables['postfix_relay_provider']}: {notice}"] if notice else []


def sasl_username(variables: dict, relay: dict, secrets: dict) -> str:
    """The SASL user name; the secrets are checked for shape only and go no further."""
    preset = relay["preset"]
    username = text_variable(variables, "postfix_relay_username") or preset.get("username", "")
    given = {name: str(value) for name, value in secrets.items() if value not in (None, "")}
    for name, value in given.items():
        problem = secret_problem(value)
        if problem:
            raise variable_error(name, problem, "Postfix would read another secret than the one given")
    has_password = bool(given)
    if preset.get("auth") and not username:
        raise variable_error("postfix_relay_username", f"required by provider {relay['provider']}")
    if variables.get("postfix_relay_auth_required") and not username:
        raise variable_error(
            "postfix_relay_username",
            "empty, but postfix_relay_auth_required is true",
            "an unset environment variable or vault lookup gives an empty value; check where it comes from",
        )
    if username and not has_password:
        hint = "or postfix_relay_ses_secret_access_key" if relay["provider"] == "ses" else ""
        raise variable_error("postfix_relay_password", f"missing for postfix_relay_username {username!r}", hint)
    if has_password and not username:
        raise variable_error("postfix_relay_username", "missing: a password was given without a user name")
    if any(c.isspace() or c == ":" for c in username):
        raise variable_error("postfix_relay_username", f"{username!r} contains white space or ':'")
    return username
