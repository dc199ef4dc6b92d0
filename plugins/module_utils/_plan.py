# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the one plan of the smtp.relay.postfix role.

``plan(variables, host)`` takes every role variable (already coerced to the types of the role's argument
spec) and what is known of the host, and returns the complete desired state: every main.cf parameter
(``None`` removes one), both lookup tables, the packages. The static rules run once over that complete
state. The role applies the result as it is: nothing is merged after the plan. Errors name the role
variable. Secrets are checked for shape only and never appear in the result.
"""

from __future__ import annotations

import re

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, shown
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import validate_entries
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import check_name, normalize_value
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.providers import (
    PROVIDERS,
    role_preset,
    ses_endpoint,
)
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    format_relayhost,
    has_unsafe_characters,
    implied_tls,
    is_hostname,
    parse_port,
    relay_tokens,
    secret_problem,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.settings import Settings
from ansible_collections.smtp.relay.plugins.module_utils._rules import static_checks, tls_parameters

MODES = ("null_client", "satellite")
DEFAULT_PORT = 587
SASL_MAP, CANONICAL_MAP, LOCAL_MAIL_MAP = "sasl_passwd", "sender_canonical", "local_recipients"
DEFAULT_LOCAL_RECIPIENTS = ("root", "postmaster")
# The newest level Postfix 3.6 to 3.10 knows; a platform whose Postfix is older passes its own in host (vars/main.yml).
COMPATIBILITY_LEVEL = "3.6"

# main.cf parameters the role sets from a variable of its own: postfix_main_cf may not set them too, or
# the host would end up with something else than either says.
MANAGED = {
    "relayhost": "postfix_relay_host",
    "myhostname": "postfix_myhostname",
    "myorigin": "postfix_myorigin",
    "smtp_sasl_auth_enable": "postfix_relay_username",
    "smtp_sasl_password_maps": "postfix_relay_username",
    "sender_canonical_maps": "postfix_sender_canonical",
    "smtp_destination_rate_delay": "postfix_rate_delay",
    "smtp_destination_concurrency_limit": "postfix_relay_concurrency",
}
# Parameters the role sets only when their variable is given; otherwise postfix_main_cf may set them.
MANAGED_WHEN_SET = {
    "virtual_alias_maps": "postfix_local_mail_to",
    "maximal_queue_lifetime": "postfix_queue_lifetime",
    "bounce_queue_lifetime": "postfix_queue_lifetime",
    "delay_warning_time": "postfix_delay_warning_time",
}
# Which role variable to name when a parameter the role derived breaks a static rule.
PARAMETER_VARIABLES = {
    "relayhost": "postfix_relay_host",
    "smtp_tls_wrappermode": "postfix_relay_tls",
    "smtp_tls_security_level": "postfix_relay_tls",
    "smtp_tls_CAfile": "postfix_relay_ca_file",
    "smtp_sasl_auth_enable": "postfix_relay_username",
    "smtp_sasl_password_maps": "postfix_relay_username",
    "smtp_sasl_security_options": "postfix_relay_allow_plaintext_auth",
}
LOCAL_NAMES = ("localhost", "localhost.localdomain")
_TIME = re.compile(r"[0-9]+[smhdw]?")


def _err(variable: str, problem: str, accepted: str = "") -> SmtpRelayError:
    return SmtpRelayError(f"{variable}: {problem}" + (f"; {accepted}" if accepted else ""), variable=variable)


def _text(variables: dict, name: str) -> str:
    """A one-line text variable, stripped; a line break or control character is refused naming it."""
    value = variables.get(name)
    if value is None:
        return ""
    value = str(value)
    if has_unsafe_characters(value):
        raise _err(name, f"{value!r} contains a line break or control character", "give one line of text")
    return value.strip()


def _check_facts(host: dict) -> None:
    """The host facts main.cf holds as they are (smtp_tls_CAfile, map references) are checked like variables: a
    newline must not come in through the platform's CA bundle path any more than through postfix_relay_ca_file."""
    for name in ("ca_bundle", "config_dir", "map_type"):
        value = host.get(name)
        if value is not None and (not isinstance(value, str) or has_unsafe_characters(value)):
            raise SmtpRelayError(
                f"host fact {name}: {shown(value)} is not one line of text; it came from the host's facts or the "
                "role's per-platform vars (roles/postfix/vars), not from a role variable: fix it there",
                fact=name,
            )


def _relay(variables: dict) -> dict:
    provider = variables.get("postfix_relay_provider") or "custom"
    if provider not in PROVIDERS:
        raise _err("postfix_relay_provider", f"unknown provider {provider!r}", "accepted: " + ", ".join(PROVIDERS))
    # The provider's preset (_providers): explicit role variables override every key.
    preset = role_preset(provider)
    if provider == "ses":
        region = _text(variables, "postfix_relay_ses_region")
        if not region:
            raise _err("postfix_relay_ses_region", "required with postfix_relay_provider: ses", "for example eu-west-1")
        try:
            preset["host"] = ses_endpoint(region)
        except SmtpRelayError as e:
            raise _err("postfix_relay_ses_region", e.msg) from None
    if provider == "mailgun":
        region = _text(variables, "postfix_relay_mailgun_region") or "us"
        hosts = PROVIDERS["mailgun"].regions
        if region not in hosts:
            raise _err("postfix_relay_mailgun_region", f"unknown region {region!r}", "accepted: " + ", ".join(hosts))
        preset["host"] = hosts[region]
    host = _text(variables, "postfix_relay_host") or preset.get("host", "")
    if not host:
        raise _err("postfix_relay_host", "no relay host given", "set it, or choose a postfix_relay_provider preset")
    port = variables.get("postfix_relay_port")
    port = preset.get("port", DEFAULT_PORT) if port is None else port
    try:
        port = parse_port(port)
    except SmtpRelayError as e:
        raise _err("postfix_relay_port", e.msg, "a port is 1-65535") from None
    primary = {"host": host, "port": port, "mx_lookup": bool(variables.get("postfix_relay_mx_lookup"))}
    try:
        relayhost = format_relayhost(primary)
    except SmtpRelayError as e:
        raise _err(
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
            raise _err(f"postfix_relay_backup_hosts[{index}]", e.msg, "each is {host, port, mx_lookup}") from None
    tls = variables.get("postfix_relay_tls") or preset.get("tls") or implied_tls(port)
    if tls is None:
        raise _err(
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


def _credentials(variables: dict, relay: dict, secrets: dict) -> str:
    """The SASL user name; the secrets are checked for shape only and go no further."""
    preset = relay["preset"]
    username = _text(variables, "postfix_relay_username") or preset.get("username", "")
    given = {name: str(value) for name, value in secrets.items() if value not in (None, "")}
    for name, value in given.items():
        problem = secret_problem(value)
        if problem:
            raise _err(name, problem, "Postfix would read another secret than the one given")
    has_password = bool(given)
    if preset.get("auth") and not username:
        raise _err("postfix_relay_username", f"required by provider {relay['provider']}")
    if variables.get("postfix_relay_auth_required") and not username:
        raise _err(
            "postfix_relay_username",
            "empty, but postfix_relay_auth_required is true",
            "an unset environment variable or vault lookup gives an empty value; check where it comes from",
        )
    if username and not has_password:
        hint = "or postfix_relay_ses_secret_access_key" if relay["provider"] == "ses" else ""
        raise _err("postfix_relay_password", f"missing for postfix_relay_username {username!r}", hint)
    if has_password and not username:
        raise _err("postfix_relay_username", "missing: a password was given without a user name")
    if any(c.isspace() or c == ":" for c in username):
        raise _err("postfix_relay_username", f"{username!r} contains white space or ':'")
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


def _names(variables: dict, host: dict) -> dict:
    """myhostname, myorigin and the local domains Postfix puts on local senders (what rewriting must catch)."""
    myhostname = _text(variables, "postfix_myhostname")
    variable = "postfix_myhostname"
    if not myhostname:
        # Postfix's own rule for a host name without a dot: it appends .localdomain.
        fqdn = str(host.get("fqdn") or "").strip().rstrip(".")
        short = str(host.get("hostname") or "").strip()
        myhostname = fqdn if "." in fqdn else f"{short or fqdn or 'localhost'}.localdomain"
        variable = "postfix_myhostname (default from the host's name)"
    if "." not in myhostname.strip(".") or not is_hostname(myhostname):
        raise _err(variable, f"{myhostname!r} is not a fully qualified host name", "for example vm1.example.org")
    myorigin = _text(variables, "postfix_myorigin") or myhostname
    if not is_hostname(myorigin):
        raise _err("postfix_myorigin", f"{myorigin!r} is not a domain name", "for example example.org")
    local = [myorigin, myhostname, *LOCAL_NAMES]
    for fact in ("fqdn", "hostname"):
        name = str(host.get(fact) or "").strip().rstrip(".")
        if name and is_hostname(name):
            local.append(name)
    return {
        "myhostname": myhostname,
        "myorigin": myorigin,
        "local_domains": list(dict.fromkeys(n.lower() for n in local)),
    }


def _senders(variables: dict, names: dict) -> tuple[dict, list[str]]:
    sender = _text(variables, "postfix_sender_address")
    canonical = {}
    if sender:
        if "@" not in sender or any(c.isspace() for c in sender) or not is_hostname(_domain_of(sender)):
            raise _err("postfix_sender_address", f"{sender!r} is not a mail address", "for example noreply@example.org")
        canonical = {f"@{name}": sender for name in names["local_domains"]}
    extra = variables.get("postfix_sender_canonical") or {}
    try:
        extra = validate_entries({str(k): v for k, v in extra.items()})
    except SmtpRelayError as e:
        raise _err("postfix_sender_canonical", e.msg.removeprefix("entries").lstrip(": ")) from None
    for key, value in extra.items():
        if any(c.isspace() for c in value):
            raise _err(f"postfix_sender_canonical.{key}", f"{value!r} is not one address", "write user@example.org")
    canonical.update(extra)
    rewritten = sorted({_domain_of(v) for v in canonical.values()})
    allowed = [str(d) for d in variables.get("postfix_allowed_sender_domains") or []]
    for domain in allowed:
        if not is_hostname(domain.removeprefix("*.")):
            raise _err(
                "postfix_allowed_sender_domains", f"{domain!r} is not a domain", "write example.org or *.example.org"
            )
    if allowed:
        candidates = rewritten or [names["myorigin"]]
        outside = [d for d in candidates if not _domain_allowed(d, allowed)]
        if outside:
            variable = (
                "postfix_sender_address" if sender else "postfix_sender_canonical" if extra else "postfix_myorigin"
            )
            raise _err(
                variable,
                f"sender domain(s) {', '.join(outside)} outside postfix_allowed_sender_domains",
                "allowed: " + ", ".join(allowed),
            )
    return canonical, rewritten


def _time(variables: dict, name: str) -> str | None:
    value = _text(variables, name)
    if value and not _TIME.fullmatch(value):
        raise _err(name, f"{value!r} is not a Postfix time", "a number with s, m, h, d or w, for example 30s, 4h, 5d")
    return value or None


def _limits(variables: dict) -> dict:
    delay = _time(variables, "postfix_rate_delay")
    lifetime = _time(variables, "postfix_queue_lifetime")
    concurrency = variables.get("postfix_relay_concurrency")
    if concurrency is not None and (isinstance(concurrency, bool) or not 1 <= int(concurrency) <= 1000):
        raise _err("postfix_relay_concurrency", f"{shown(concurrency)} is not 1-1000")
    return {
        "smtp_destination_rate_delay": delay,
        "smtp_destination_concurrency_limit": None if concurrency is None else str(int(concurrency)),
        # Bounces (mail from the null sender) live no longer than other mail: one outage budget for both.
        "maximal_queue_lifetime": lifetime,
        "bounce_queue_lifetime": lifetime,
        "delay_warning_time": _time(variables, "postfix_delay_warning_time"),
    }


def _local_mail(variables: dict, names: dict) -> dict:
    """Where mail for root, postmaster and the like goes: {recipient@local domain: address} (empty: unchanged).

    Cron and daemons write to a bare ``root``; Postfix makes it ``root@$myorigin``, a mailbox at the relay's side
    that nobody reads or that bounces. Only the named recipients are rewritten, at the host's own names, so mail
    for other people at those domains still reaches them.
    """
    target = _text(variables, "postfix_local_mail_to")
    recipients = [str(r).strip() for r in variables.get("postfix_local_recipients") or DEFAULT_LOCAL_RECIPIENTS]
    if not target:
        return {}
    if "@" not in target or any(c.isspace() for c in target) or not is_hostname(_domain_of(target)):
        raise _err("postfix_local_mail_to", f"{target!r} is not a mail address", "for example ops@example.org")
    for recipient in recipients:
        if not recipient or "@" in recipient or has_unsafe_characters(recipient) or any(c.isspace() for c in recipient):
            raise _err("postfix_local_recipients", f"{recipient!r} is not a local user name", "for example root")
    return {f"{r.lower()}@{d}": target for r in recipients for d in names["local_domains"]}


def _extra_main_cf(variables: dict) -> dict:
    """postfix_main_cf, checked like postconf checks its settings, naming the variable."""
    extra = variables.get("postfix_main_cf") or {}
    result = {}
    for name, value in extra.items():
        try:
            check_name(name)
            result[name] = normalize_value(name, value)
        except SmtpRelayError as e:
            raise _err(f"postfix_main_cf.{name}", e.msg.split(": ", 1)[-1]) from None
        owner = MANAGED.get(name) or (MANAGED_WHEN_SET.get(name) if variables.get(MANAGED_WHEN_SET.get(name)) else None)
        if owner:
            raise _err(f"postfix_main_cf.{name}", f"set by the role from {owner}", f"set {owner} only")
    return result


def _maps(host: dict, username: str, canonical: dict, local_mail: dict) -> dict:
    config_dir = host.get("config_dir") or "/etc/postfix"
    map_type = host.get("map_type") or "hash"
    return {
        name: {"path": f"{config_dir}/{name}", "type": map_type, "reference": f"{map_type}:{config_dir}/{name}"}
        for name, used in (
            (SASL_MAP, bool(username)),
            (CANONICAL_MAP, bool(canonical)),
            (LOCAL_MAIL_MAP, bool(local_mail)),
        )
        if used
    }


def plan(variables: dict, host: dict, secrets: dict | None = None) -> dict:
    """Role variables (typed) + host facts -> the complete desired state; refuses bad input naming the variable.

    ``host``: ``fqdn``, ``hostname``, ``ca_bundle``, ``config_dir``, ``map_type``, ``packages``,
    ``compatibility_level`` (of the platform's Postfix).
    ``secrets``: {variable: value} checked for shape, never returned.
    """
    _check_facts(host)
    mode = variables.get("postfix_mode") or "null_client"
    if mode not in MODES:
        raise _err("postfix_mode", f"unknown mode {mode!r}", "accepted: " + ", ".join(MODES))
    relay = _relay(variables)
    username = _credentials(variables, relay, secrets or {})
    names = _names(variables, host)
    canonical, rewritten = _senders(variables, names)
    verify = variables.get("postfix_relay_tls_verify", True) is not False
    ca_file = _text(variables, "postfix_relay_ca_file") or str(host.get("ca_bundle") or "")
    allow_plaintext = bool(variables.get("postfix_relay_allow_plaintext_auth"))
    local_mail = _local_mail(variables, names)
    maps = _maps(host, username, canonical, local_mail)
    main_cf = {
        "compatibility_level": str(host.get("compatibility_level") or COMPATIBILITY_LEVEL),
        "myhostname": names["myhostname"],
        "myorigin": names["myorigin"],
        "relayhost": relay["relayhost"],
        "inet_interfaces": "loopback-only",
        "mynetworks": "127.0.0.0/8 [::1]/128",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        **tls_parameters(relay["tls"], verify, ca_file),
        **_limits(variables),
    }
    if mode == "null_client":
        main_cf.update(mydestination="", local_transport="error:local delivery is disabled", alias_maps="")
    else:
        main_cf.update(
            mydestination="$myhostname, localhost.$mydomain, localhost",
            local_transport=None,
            alias_maps="hash:/etc/aliases",
        )
    main_cf.update(
        smtp_sasl_auth_enable="yes" if username else "no",
        smtp_sasl_password_maps=maps[SASL_MAP]["reference"] if username else None,
        # Plain-text mechanisms only inside TLS, unless the operator explicitly allowed otherwise.
        smtp_sasl_security_options=("noanonymous" if allow_plaintext else "noplaintext, noanonymous")
        if username
        else None,
        smtp_sasl_tls_security_options="noanonymous" if username else None,
        sender_canonical_maps=maps[CANONICAL_MAP]["reference"] if canonical else None,
        virtual_alias_maps=maps[LOCAL_MAIL_MAP]["reference"] if local_mail else None,
    )
    extra = _extra_main_cf(variables)
    main_cf.update(extra)
    sasl_keys = relay_tokens(relay["relayhost"]) if username else []
    _preflight(main_cf, extra, relay["tls"], sasl_keys, allow_plaintext)
    return {
        "mode": mode,
        "relayhost": relay["relayhost"],
        "tls": relay["tls"],
        "provider": relay["provider"],
        "username": username,
        "allow_plaintext_auth": allow_plaintext,
        "sasl_keys": sasl_keys,
        "myhostname": names["myhostname"],
        "myorigin": names["myorigin"],
        "sender_canonical": canonical,
        "local_recipients": local_mail,
        "sender_domains": rewritten,
        "tls_level": Settings(main_cf).tls_level(),
        "maps": maps,
        "packages": list(host.get("packages") or []),
        "main_cf": main_cf,
    }


def _preflight(main_cf: dict, extra: dict, tls: str, sasl_keys: list[str], allow_plaintext: bool) -> None:
    """The static rules over the complete main.cf: a failure names postfix_main_cf when it set the parameter."""
    # Name and boolean rules judge what postfix_main_cf added; the relay rules judge the whole main.cf.
    context = {"tls": tls, "sasl_keys": sasl_keys, "allow_plaintext_auth": allow_plaintext, "configured": sorted(extra)}
    fails = [entry for entry in static_checks(main_cf, context) if entry["status"] == FAIL]
    if not fails:
        return
    touched = sorted(
        n for n in extra if n.startswith(("smtp_tls_", "smtp_sasl_")) or any(n == f.get("parameter") for f in fails)
    )
    first = fails[0]
    if touched and any(f["id"].startswith(("tls.", "sasl.")) or f.get("parameter") in extra for f in fails):
        variable = f"postfix_main_cf ({', '.join(touched)})"
    else:
        variable = PARAMETER_VARIABLES.get(first.get("parameter"), "postfix_main_cf")
    problems = "; ".join(f"{f['message']} ({f['id']})" for f in fails)
    error = _err(variable, problems, first.get("hint") or "")
    error.details["rule_ids"] = [f["id"] for f in fails]
    raise error
