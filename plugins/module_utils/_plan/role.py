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

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, shown
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._plan.addresses import (
    local_mail_routes,
    mail_names,
    sender_rewrites,
    unapproved_sender_rules,
)
from ansible_collections.smtp.relay.plugins.module_utils._plan.inputs import (
    text_variable,
    time_variable,
    variable_error,
)
from ansible_collections.smtp.relay.plugins.module_utils._plan.header_checks import header_checks
from ansible_collections.smtp.relay.plugins.module_utils._plan.relay import relay_settings, sasl_username
from ansible_collections.smtp.relay.plugins.module_utils._plan.sender_relays import (
    SENDER_RELAY_MAP,
    sender_relay_parameters,
    sender_relays,
)
from ansible_collections.smtp.relay.plugins.module_utils._plan.tls_policy import (
    TLS_POLICY_MAP,
    policy_table,
    tls_choices,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import check_name, normalize_value
from ansible_collections.smtp.relay.plugins.module_utils._postfix.settings import Settings
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import has_unsafe_characters, relay_tokens
from ansible_collections.smtp.relay.plugins.module_utils._rules import static_checks, tls_parameters

MODES = ("null_client", "satellite")
# The local aliases a satellite keeps (Debian's and EL's file).
SATELLITE_ALIASES = "hash:/etc/aliases"
SASL_MAP, CANONICAL_MAP, LOCAL_MAIL_MAP = "sasl_passwd", "sender_canonical", "local_recipients"
UNAPPROVED_SENDER_MAP = "unapproved_senders"
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
    "smtp_tls_policy_maps": "postfix_relay_tls_name",
    "smtp_tls_mandatory_protocols": "postfix_relay_tls_min_version",
    "smtp_tls_protocols": "postfix_relay_tls_min_version",
    "smtp_host_lookup": "postfix_relay_host_lookup",
}
# Parameters the role sets only when their variable is given; otherwise postfix_main_cf may set them.
MANAGED_WHEN_SET = {
    "virtual_alias_maps": "postfix_local_mail_to",
    "maximal_queue_lifetime": "postfix_queue_lifetime",
    "bounce_queue_lifetime": "postfix_queue_lifetime",
    "delay_warning_time": "postfix_delay_warning_time",
    "smtp_header_checks": "postfix_header_checks",
    "smtp_tls_fingerprint_digest": "postfix_relay_tls_fingerprints",
    "sender_dependent_relayhost_maps": "postfix_sender_relays",
    "smtp_sender_dependent_authentication": "postfix_sender_relays",
}
# Which role variable to name when a parameter the role derived breaks a static rule.
PARAMETER_VARIABLES = {
    "relayhost": "postfix_relay_host",
    "smtp_tls_wrappermode": "postfix_relay_tls",
    "smtp_tls_security_level": "postfix_relay_tls",
    "smtp_tls_CAfile": "postfix_relay_ca_file",
    "smtp_tls_policy_maps": "postfix_relay_tls_name",
    "smtp_sasl_auth_enable": "postfix_relay_username",
    "smtp_sasl_password_maps": "postfix_relay_username",
    "smtp_sasl_security_options": "postfix_relay_allow_plaintext_auth",
}


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


def _limits(variables: dict) -> dict:
    delay = time_variable(variables, "postfix_rate_delay")
    lifetime = time_variable(variables, "postfix_queue_lifetime")
    concurrency = variables.get("postfix_relay_concurrency")
    if concurrency is not None and (isinstance(concurrency, bool) or not 1 <= int(concurrency) <= 1000):
        raise variable_error("postfix_relay_concurrency", f"{shown(concurrency)} is not 1-1000")
    return {
        "smtp_destination_rate_delay": delay,
        "smtp_destination_concurrency_limit": None if concurrency is None else str(int(concurrency)),
        # Bounces (mail from the null sender) live no longer than other mail: one outage budget for both.
        "maximal_queue_lifetime": lifetime,
        "bounce_queue_lifetime": lifetime,
        "delay_warning_time": time_variable(variables, "postfix_delay_warning_time"),
    }


def _extra_main_cf(variables: dict) -> dict:
    """postfix_main_cf, checked like postconf checks its settings, naming the variable."""
    extra = variables.get("postfix_main_cf") or {}
    result = {}
    for name, value in extra.items():
        try:
            check_name(name)
            result[name] = normalize_value(name, value)
        except SmtpRelayError as e:
            raise variable_error(f"postfix_main_cf.{name}", e.msg.split(": ", 1)[-1]) from None
        owner = MANAGED.get(name) or (MANAGED_WHEN_SET.get(name) if variables.get(MANAGED_WHEN_SET.get(name)) else None)
        if owner:
            raise variable_error(f"postfix_main_cf.{name}", f"set by the role from {owner}", f"set {owner} only")
    return result


def _maps(
    host: dict, authenticates: bool, canonical: dict, local_mail: dict, sender_table: dict, *, tls_policy: bool = False
) -> dict:
    config_dir = host.get("config_dir") or "/etc/postfix"
    map_type = host.get("map_type") or "hash"
    return {
        name: {"path": f"{config_dir}/{name}", "type": map_type, "reference": f"{map_type}:{config_dir}/{name}"}
        for name, used in (
            (SASL_MAP, authenticates),
            (SENDER_RELAY_MAP, bool(sender_table)),
            (CANONICAL_MAP, bool(canonical)),
            (LOCAL_MAIL_MAP, bool(local_mail)),
            (TLS_POLICY_MAP, tls_policy),
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
        raise variable_error("postfix_mode", f"unknown mode {mode!r}", "accepted: " + ", ".join(MODES))
    relay = relay_settings(variables)
    username = sasl_username(variables, relay, secrets or {})
    names = mail_names(variables, host)
    canonical, rewritten = sender_rewrites(variables, names)
    verify = variables.get("postfix_relay_tls_verify", True) is not False
    ca_file = text_variable(variables, "postfix_relay_ca_file") or str(host.get("ca_bundle") or "")
    allow_plaintext = bool(variables.get("postfix_relay_allow_plaintext_auth"))
    local_mail = local_mail_routes(variables, names)
    unapproved = unapproved_sender_rules(variables)
    # Per-sender relays may bring credentials of their own: SASL is on when any relay has some.
    senders = sender_relays(variables, relay, allow_plaintext)
    authenticates = bool(username or senders["sasl"])
    tls = tls_choices(variables, relay["tls"], verify)
    maps = _maps(host, authenticates, canonical, local_mail, senders["table"], tls_policy=relay["tls"] != "none")
    # Senders outside the approved domains: a regexp table searched after sender_canonical (which catches the host's
    # own senders first).
    unapproved_table = {
        "name": UNAPPROVED_SENDER_MAP,
        "type": "regexp",
        "entries": unapproved,
        "state": "present" if unapproved else "absent",
    }
    canonical_maps = [maps[CANONICAL_MAP]["reference"]] if canonical else []
    if unapproved:
        canonical_maps.append(f"regexp:{host.get('config_dir') or '/etc/postfix'}/{UNAPPROVED_SENDER_MAP}")
    main_cf = {
        "compatibility_level": str(host.get("compatibility_level") or COMPATIBILITY_LEVEL),
        "myhostname": names["myhostname"],
        "myorigin": names["myorigin"],
        "relayhost": relay["relayhost"],
        "inet_interfaces": "loopback-only",
        "mynetworks": "127.0.0.0/8 [::1]/128",
        "smtpd_relay_restrictions": "permit_mynetworks, reject",
        **tls_parameters(relay["tls"], verify, ca_file, **tls["parameters"]),
        "smtp_host_lookup": tls["host_lookup"],
        **_limits(variables),
    }
    if mode == "null_client":
        main_cf.update(mydestination="", local_transport="error:local delivery is disabled", alias_maps="")
    else:
        main_cf.update(
            mydestination="$myhostname, localhost.$mydomain, localhost",
            local_transport=None,
            alias_maps=SATELLITE_ALIASES,
        )
    main_cf.update(
        smtp_sasl_auth_enable="yes" if authenticates else "no",
        smtp_sasl_password_maps=maps[SASL_MAP]["reference"] if authenticates else None,
        # Plain-text mechanisms only inside TLS, unless the operator explicitly allowed otherwise.
        smtp_sasl_security_options=("noanonymous" if allow_plaintext else "noplaintext, noanonymous")
        if authenticates
        else None,
        smtp_sasl_tls_security_options="noanonymous" if authenticates else None,
        sender_canonical_maps=", ".join(canonical_maps) or None,
        virtual_alias_maps=maps[LOCAL_MAIL_MAP]["reference"] if local_mail else None,
        **sender_relay_parameters(senders, maps.get(SENDER_RELAY_MAP, {}).get("reference")),
    )
    headers = header_checks(variables, host.get("config_dir") or "/etc/postfix")
    main_cf.update(headers["main_cf"])
    extra = _extra_main_cf(variables)
    main_cf.update(extra)
    # The TLS policy follows the final main.cf (postfix_main_cf may have changed its level).
    policy = policy_table(main_cf, relay["relayhost"], tls)
    main_cf["smtp_tls_policy_maps"] = maps[TLS_POLICY_MAP]["reference"] if policy else None
    sasl_keys = relay_tokens(relay["relayhost"]) if username else []
    sender_keys = [entry["key"] for entry in senders["sasl"]]
    _preflight(main_cf, extra, relay["tls"], sasl_keys + sender_keys, allow_plaintext, policies=policy)
    return {
        "mode": mode,
        "relayhost": relay["relayhost"],
        "tls": relay["tls"],
        "provider": relay["provider"],
        "username": username,
        "allow_plaintext_auth": allow_plaintext,
        "sasl_keys": sasl_keys,
        # Per-sender relays: {sender key: relayhost}, and the SASL keys by sender (the role adds the passwords).
        "sender_relays": senders["table"],
        "sender_sasl": senders["sasl"],
        "myhostname": names["myhostname"],
        "myorigin": names["myorigin"],
        "sender_canonical": canonical,
        "local_recipients": local_mail,
        "sender_domains": rewritten,
        "tls_level": Settings(main_cf).tls_level(),
        "maps": maps,
        # Every table of the role that holds no secret, present or absent: the role writes them as given.
        "tables": [
            {"name": name, "entries": entries, "state": "present" if entries else "absent"}
            for name, entries in (
                (CANONICAL_MAP, canonical),
                (LOCAL_MAIL_MAP, local_mail),
                (SENDER_RELAY_MAP, senders["table"]),
                (TLS_POLICY_MAP, policy),
            )
        ]
        + [headers["table"], unapproved_table],
        # Built by postfix_apply when missing or older than /etc/aliases (the satellite's local aliases).
        "alias_databases": [SATELLITE_ALIASES] if mode == "satellite" else [],
        "packages": list(host.get("packages") or []),
        "main_cf": main_cf,
    }


def _preflight(
    main_cf: dict, extra: dict, tls: str, sasl_keys: list[str], allow_plaintext: bool, *, policies: dict | None = None
) -> None:
    """The static rules over the complete main.cf: a failure names postfix_main_cf when it set the parameter."""
    # Name and boolean rules judge what postfix_main_cf added; the relay rules judge the whole main.cf.
    context = {"tls": tls, "sasl_keys": sasl_keys, "allow_plaintext_auth": allow_plaintext, "configured": sorted(extra)}
    context["tls_policies"] = policies or {}
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
    error = variable_error(variable, problems, first.get("hint") or "")
    error.details["rule_ids"] = [f["id"] for f in fails]
    raise error
