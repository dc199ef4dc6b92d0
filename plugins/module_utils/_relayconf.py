# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: turn the role's variables into main.cf settings and lookup tables."""

from __future__ import annotations

from ._errors import SmtpRelayError
from ._relayhost import format_relayhost, implied_tls, parse_port, reject_control_characters, ses_endpoint
from ._relayhost import is_hostname
from ._rules import static_checks

# Provider presets: explicit role variables override every key.
PROVIDERS = {
    "ses": {"port": 587, "tls": "starttls", "auth": True},
    "sendgrid": {"host": "smtp.sendgrid.net", "port": 587, "tls": "starttls", "auth": True, "username": "apikey"},
    "mailgun": {"host": "smtp.mailgun.org", "port": 587, "tls": "starttls", "auth": True},
    "office365": {"host": "smtp.office365.com", "port": 587, "tls": "starttls", "auth": True},
    "google_relay": {"host": "smtp-relay.gmail.com", "port": 587, "tls": "starttls", "auth": False},
    "gmail": {"host": "smtp.gmail.com", "port": 587, "tls": "starttls", "auth": True},
    "custom": {},
}
MAILGUN_HOSTS = {"us": "smtp.mailgun.org", "eu": "smtp.eu.mailgun.org"}

MODES = ("null_client", "satellite")

# Which role variable to name when a main.cf parameter the role derived breaks a static rule.
PARAMETER_VARIABLES = {
    "relayhost": "postfix_relay_host/postfix_relay_port",
    "smtp_tls_wrappermode": "postfix_relay_tls",
    "smtp_tls_security_level": "postfix_relay_tls",
    "smtp_tls_CAfile": "postfix_relay_ca_file",
    "smtp_sasl_auth_enable": "postfix_relay_username",
    "smtp_sasl_password_maps": "postfix_relay_username",
}


def _err(variable: str, problem: str, accepted: str = "") -> SmtpRelayError:
    text = f"{variable}: {problem}"
    if accepted:
        text += f"; {accepted}"
    return SmtpRelayError(text, variable=variable)


def _text(spec: dict, name: str) -> str:
    value = spec.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        value = str(value)
    reject_control_characters(name, value)
    return value.strip()


def _relay(spec: dict) -> tuple[dict, dict]:
    provider = spec.get("postfix_relay_provider") or "custom"
    if provider not in PROVIDERS:
        raise _err("postfix_relay_provider", f"unknown provider {provider!r}", "accepted: " + ", ".join(PROVIDERS))
    preset = dict(PROVIDERS[provider])
    if provider == "ses":
        region = _text(spec, "postfix_relay_ses_region")
        if not region:
            raise _err("postfix_relay_ses_region", "required with postfix_relay_provider: ses", "for example eu-west-1")
        try:
            preset["host"] = ses_endpoint(region)
        except SmtpRelayError as e:
            raise _err("postfix_relay_ses_region", e.msg) from None
    if provider == "mailgun":
        region = _text(spec, "postfix_relay_mailgun_region") or "us"
        if region not in MAILGUN_HOSTS:
            raise _err("postfix_relay_mailgun_region", f"unknown region {region!r}", "accepted: us, eu")
        preset["host"] = MAILGUN_HOSTS[region]
    host = _text(spec, "postfix_relay_host") or preset.get("host", "")
    if not host:
        raise _err("postfix_relay_host", "no relay host given", "set it, or choose a postfix_relay_provider preset")
    port_value = spec.get("postfix_relay_port") or preset.get("port") or 587
    try:
        port = parse_port(port_value)
        relay = {"host": host, "port": port, "mx_lookup": bool(spec.get("postfix_relay_mx_lookup"))}
        backups = list(spec.get("postfix_relay_backup_hosts") or [])
        relayhost = format_relayhost([relay, *backups])
    except SmtpRelayError as e:
        raise _err(
            "postfix_relay_host",
            e.msg,
            "postfix_relay_host is a bare host name or IP, the port goes in postfix_relay_port",
        ) from None
    tls = spec.get("postfix_relay_tls") or preset.get("tls") or implied_tls(port)
    if tls is None:
        raise _err(
            "postfix_relay_tls",
            f"port {port} does not tell whether the relay expects STARTTLS or implicit TLS",
            "set postfix_relay_tls to starttls, implicit or none (a port-forward to 465 is implicit)",
        )
    return {"provider": provider, "relayhost": relayhost, "port": port, "tls": tls, "host": host}, preset


def _credentials(spec: dict, preset: dict, relay: dict) -> str:
    """Check the credentials that will be used; the password itself never reaches the planner."""
    username = _text(spec, "postfix_relay_username") or preset.get("username", "")
    has_password = bool(spec.get("postfix_relay_password_given"))
    if preset.get("auth") and not username:
        raise _err("postfix_relay_username", f"required by provider {relay['provider']}")
    if username and not has_password:
        hint = "or postfix_relay_ses_secret_access_key" if relay["provider"] == "ses" else ""
        raise _err("postfix_relay_password", f"missing for postfix_relay_username {username!r}", hint)
    if has_password and not username:
        raise _err("postfix_relay_username", "missing: a password was given without a user name")
    if any(c.isspace() for c in username):
        raise _err("postfix_relay_username", f"{username!r} contains white space")
    if username and relay["tls"] == "none" and not spec.get("postfix_relay_allow_plaintext_auth"):
        raise _err(
            "postfix_relay_tls",
            "SASL credentials over a connection without TLS would send the password in clear",
            "use starttls or implicit, or set postfix_relay_allow_plaintext_auth: true if you really mean it",
        )
    return username


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def _domain_allowed(domain: str, allowed: list[str]) -> bool:
    for raw_rule in allowed:
        rule = raw_rule.lower().rstrip(".")
        if rule.startswith("*."):
            if domain.endswith(rule[1:]):
                return True
        elif domain == rule:
            return True
    return False


def _senders(spec: dict, local_names: list[str]) -> tuple[dict, list[str]]:
    sender = _text(spec, "postfix_sender_address")
    canonical = {}
    if sender:
        if "@" not in sender or not is_hostname(_domain_of(sender)):
            raise _err("postfix_sender_address", f"{sender!r} is not a mail address", "for example noreply@example.org")
        for name in local_names:
            canonical[f"@{name}"] = sender
    for key, value in (spec.get("postfix_sender_canonical") or {}).items():
        reject_control_characters("postfix_sender_canonical", f"{key} {value}")
        canonical[str(key)] = str(value)
    rewritten = sorted({_domain_of(v) for v in canonical.values()})
    allowed = [str(d) for d in spec.get("postfix_allowed_sender_domains") or []]
    if allowed:
        myorigin = _text(spec, "postfix_myorigin")
        candidates = rewritten or ([myorigin] if myorigin and not myorigin.startswith("$") else [])
        outside = [d for d in candidates if not _domain_allowed(d, allowed)]
        if outside:
            variable = (
                "postfix_sender_address" if sender else "postfix_sender_canonical" if rewritten else "postfix_myorigin"
            )
            raise _err(
                variable,
                f"sender domain(s) {', '.join(outside)} outside postfix_allowed_sender_domains",
                "allowed: " + ", ".join(allowed),
            )
    return canonical, rewritten


def _tls_settings(spec: dict, relay: dict, ca_default: str) -> dict:
    tls = relay["tls"]
    verify = spec.get("postfix_relay_tls_verify", True)
    if tls == "none":
        return {"smtp_tls_security_level": "none", "smtp_tls_wrappermode": "no"}
    settings = {
        "smtp_tls_security_level": "secure" if verify else "encrypt",
        "smtp_tls_wrappermode": "yes" if tls == "implicit" else "no",
        "smtp_tls_loglevel": "1",
    }
    if verify:
        settings["smtp_tls_CAfile"] = _text(spec, "postfix_relay_ca_file") or ca_default
        settings["smtp_tls_servername"] = "hostname"
    return settings


def build(spec: dict, local_names: list[str], ca_default: str) -> dict:
    """Role variables -> the plan (main.cf settings, SASL map key, sender map): refuses bad input.

    Errors name the role variable. ``local_names`` are the host's own names (FQDN, localhost...)
    whose senders are rewritten. Secrets are not inputs: only whether a password was given.
    """
    mode = spec.get("postfix_mode") or "null_client"
    if mode not in MODES:
        raise _err("postfix_mode", f"unknown mode {mode!r}", "accepted: " + ", ".join(MODES))
    relay, preset = _relay(spec)
    username = _credentials(spec, preset, relay)
    canonical, rewritten = _senders(spec, local_names)
    main_cf = {
        "compatibility_level": "3.6",
        "relayhost": relay["relayhost"],
        "inet_interfaces": "loopback-only",
        "mynetworks": "127.0.0.0/8 [::1]/128",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        "myorigin": _text(spec, "postfix_myorigin") or "$myhostname",
        "smtp_tls_security_level": None,
        **_tls_settings(spec, relay, ca_default),
    }
    if mode == "null_client":
        main_cf.update(mydestination="", local_transport="error:local delivery is disabled", alias_maps="")
    else:
        main_cf.update(mydestination="$myhostname, localhost.$mydomain, localhost", alias_maps="hash:/etc/aliases")
    if username:
        main_cf.update(
            smtp_sasl_auth_enable="yes",
            smtp_sasl_security_options="noanonymous",
            smtp_sasl_tls_security_options="noanonymous",
        )
    else:
        main_cf.update(smtp_sasl_auth_enable="no")
    delay = spec.get("postfix_rate_delay")
    if delay:
        main_cf["smtp_destination_rate_delay"] = str(delay)
    concurrency = spec.get("postfix_relay_concurrency")
    if concurrency:
        main_cf["smtp_destination_concurrency_limit"] = str(concurrency)
    _preflight(main_cf, relay["tls"], username)
    return {
        "mode": mode,
        "relayhost": relay["relayhost"],
        "tls": relay["tls"],
        "provider": relay["provider"],
        "username": username,
        "sasl_key": relayhost_key(relay["relayhost"]) if username else "",
        "sender_canonical": canonical,
        "sender_domains": rewritten,
        "main_cf": {k: v for k, v in main_cf.items() if v is not None},
    }


def _preflight(main_cf: dict, tls: str, username: str) -> None:
    """Run the same static rules as relay_check over the planned settings: one engine for both."""
    settings = {k: v for k, v in main_cf.items() if v is not None}
    if username:
        settings["smtp_sasl_password_maps"] = "hash:/etc/postfix/sasl_passwd"
    keys = [relayhost_key(settings["relayhost"])] if username else []
    for entry in static_checks(settings, {"tls": tls, "sasl_keys": keys}):
        if entry["status"] == "fail":
            variable = PARAMETER_VARIABLES.get(entry.get("parameter"), "postfix_main_cf")
            raise _err(variable, f"{entry['message']} ({entry['id']})", entry.get("hint") or "")


def relayhost_key(relayhost: str) -> str:
    """The SASL map key Postfix looks up: the first relayhost destination, written exactly as in relayhost."""
    return relayhost.split(",", 1)[0].strip()
