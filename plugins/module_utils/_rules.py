# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the static relay rules, shared by relay_check and the role's pre-flight.

``static_checks(settings, context)`` is pure: ``settings`` maps main.cf parameter names to their text
(missing names take Postfix's defaults), ``context`` carries what the caller knows besides (the TLS mode
asked for, SASL map keys, mechanisms the relay offered, installed SASL plugins...). Each rule emits its
own stable id, with ``pass`` when it holds and ``warn``/``fail`` when it does not; a rule that does not
apply emits nothing.

Longer than the other files on purpose: this is the one place a relay rule is written (the role's plan, relay_check,
postconf and verify all run these), and the rules read each other's vocabulary (TLS levels, SASL options,
mechanisms). Splitting it by topic would scatter the one list a reviewer has to read to know what is checked.
"""

from __future__ import annotations

import difflib

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, UNKNOWN, WARN, check
from ansible_collections.smtp.relay.plugins.module_utils._postfix.settings import DEFAULTS, Settings
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    IMPLICIT_TLS_PORTS,
    SEPARATORS,
    STARTTLS_PORTS,
    RelayhostError,
    format_relayhost,
    parse_relayhost,
    relay_tokens,
)

STAGE = "static"

TLS_LEVELS = ("none", "may", "encrypt", "dane", "dane-only", "fingerprint", "verify", "secure")
VERIFYING_LEVELS = ("verify", "secure")
ENCRYPTING_LEVELS = ("encrypt", "dane", "dane-only", "fingerprint", "verify", "secure")

SASL_OPTIONS = ("noplaintext", "noactive", "nodictionary", "noanonymous", "mutual_auth")

# What each Cyrus SASL client mechanism is exposed to, i.e. which security option rules it out
# (from the mechanisms' security flags in Cyrus SASL 2.1).
MECHANISM_WEAKNESSES = {
    "PLAIN": {"noplaintext", "nodictionary", "noactive", "mutual_auth"},
    "LOGIN": {"noplaintext", "nodictionary", "noactive", "mutual_auth"},
    "ANONYMOUS": {"noanonymous", "nodictionary", "noactive", "mutual_auth"},
    "CRAM-MD5": {"nodictionary", "noactive", "mutual_auth"},
    "NTLM": {"nodictionary", "noactive", "mutual_auth"},
    "DIGEST-MD5": {"nodictionary", "noactive"},
    "SCRAM-SHA-1": {"nodictionary"},
    "SCRAM-SHA-256": {"nodictionary"},
    "GSSAPI": {"nodictionary"},
    "EXTERNAL": set(),
}

# Client plugin library name (lib<name>.so in the sasl2 directory) -> mechanisms it provides.
SASL_PLUGINS = {
    "plain": ("PLAIN",),
    "login": ("LOGIN",),
    "anonymous": ("ANONYMOUS",),
    "crammd5": ("CRAM-MD5",),
    "digestmd5": ("DIGEST-MD5",),
    "ntlm": ("NTLM",),
    "scram": ("SCRAM-SHA-1", "SCRAM-SHA-256"),
    "gssapiv2": ("GSSAPI",),
    "gs2": ("GS2-KRB5", "GS2-IAKERB"),
}
SASL_PLUGIN_PACKAGES = "libsasl2-modules (Debian/Ubuntu) or cyrus-sasl-plain (EL)"

# Parameters that are gone or superseded, with what replaces them.
OBSOLETE = {
    "smtp_use_tls": "smtp_tls_security_level = may",
    "smtp_enforce_tls": "smtp_tls_security_level = encrypt",
    "smtp_tls_enforce_peername": "smtp_tls_security_level = verify",
    "smtp_tls_per_site": "smtp_tls_policy_maps",
    "smtp_tls_cipherlist": "smtp_tls_mandatory_ciphers",
    "disable_dns_lookups": "smtp_dns_support_level",
    "fallback_relay": "smtp_fallback_relay",
    "virtual_maps": "virtual_alias_maps",
    "smtp_skip_4xx_greeting": "(nothing: Postfix always skips a 4xx greeting)",
    "smtp_sasl_type_cyrus": "smtp_sasl_type = cyrus",
}

# Parameters a relay client uses; a name close to one of these but not equal is a typo that silently
# leaves the real parameter at its default.
RELAY_PARAMETERS = (
    *DEFAULTS,
    "myhostname", "mydomain", "myorigin", "mydestination", "mynetworks", "inet_interfaces", "inet_protocols",
    "local_transport", "alias_maps", "alias_database", "default_transport", "relay_domains",
    "sender_canonical_maps", "recipient_canonical_maps", "canonical_maps", "smtp_generic_maps",
    "smtp_header_checks", "smtp_tls_loglevel", "smtp_tls_session_cache_database", "smtp_tls_protocols",
    "smtp_tls_mandatory_protocols", "smtp_tls_ciphers", "smtp_tls_mandatory_ciphers", "smtp_tls_policy_maps",
    "smtp_tls_cert_file", "smtp_tls_key_file", "smtp_tls_chain_files", "smtp_tls_fingerprint_digest",
    "smtp_sasl_type", "smtp_sasl_path", "smtp_sender_dependent_authentication", "sender_dependent_relayhost_maps",
    "smtp_bind_address", "smtp_bind_address6", "smtp_host_lookup", "smtp_dns_support_level",
    "smtp_destination_rate_delay", "default_destination_rate_delay", "smtp_destination_concurrency_limit",
    "smtp_connect_timeout", "smtp_helo_name", "smtp_fallback_relay", "smtputf8_enable", "append_dot_mydomain",
    "biff", "maillog_file", "message_size_limit", "smtpd_relay_restrictions", "smtp_address_preference",
    "default_database_type", "smtp_tls_note_starttls_offer", "smtp_tls_block_early_mail_reply",
    "smtp_sasl_auth_soft_bounce", "smtp_sasl_auth_cache_name", "smtp_sasl_auth_cache_time",
)  # fmt: skip

# Booleans a relay client reads; Postfix daemons exit with "bad boolean configuration" on anything but yes/no.
BOOLEANS = frozenset(
    {
        "smtp_tls_wrappermode", "smtp_sasl_auth_enable", "tls_append_default_CA", "smtp_use_tls",
        "smtp_enforce_tls", "smtp_tls_enforce_peername", "smtp_sender_dependent_authentication",
        "smtp_tls_note_starttls_offer", "smtp_tls_block_early_mail_reply", "smtp_sasl_auth_soft_bounce",
        "smtputf8_enable", "append_dot_mydomain", "biff", "disable_dns_lookups", "smtp_always_send_ehlo",
        "smtp_never_send_ehlo", "smtp_skip_5xx_greeting", "smtp_defer_if_no_mx_address_found",
        "smtp_send_xforward_command", "allow_percent_hack", "swap_bangpath", "strict_rfc821_envelopes",
        "smtpd_sasl_auth_enable", "smtpd_tls_auth_only", "smtp_tls_force_insecure_host_tlsa_lookup",
        "smtp_tls_enable_rpk", "smtp_balance_inet_protocols", "smtp_cname_overrides_servername",
    }
)  # fmt: skip


def sasl_options(settings: Settings, tls_active: bool) -> list[str]:
    """The SASL security options Postfix applies on a connection that is (or is not) encrypted."""
    return settings.words("smtp_sasl_tls_security_options" if tls_active else "smtp_sasl_security_options")


def permitted_mechanisms(settings: Settings, offered, tls_active: bool) -> list[str]:
    """Offered mechanisms the Postfix SMTP client would be willing to use, in the relay's order."""
    options = set(sasl_options(settings, tls_active))
    filters = {w.upper() for w in settings.words("smtp_sasl_mechanism_filter")}
    permitted = []
    for mech in (m.upper() for m in offered):
        if filters and not any(f.startswith(("/", "!")) for f in filters) and mech not in filters:
            continue
        weaknesses = MECHANISM_WEAKNESSES.get(mech)
        if weaknesses is not None and not weaknesses & options:
            permitted.append(mech)
    return permitted


def plugin_mechanisms(plugin_names) -> set[str]:
    """Mechanisms provided by installed Cyrus client plugins, from their library names (plain, login...)."""
    return {mech for name in plugin_names for mech in SASL_PLUGINS.get(name, (name.upper(),))}


# Protocols below a minimum version, written as exclusions: every Postfix from 3.5 reads these (">=TLSv1.2" needs 3.6).
MIN_TLS_VERSIONS = {
    "TLSv1.2": ("!SSLv2", "!SSLv3", "!TLSv1", "!TLSv1.1"),
    "TLSv1.3": ("!SSLv2", "!SSLv3", "!TLSv1", "!TLSv1.1", "!TLSv1.2"),
}
HOST_LOOKUPS = ("dns", "native", "dns, native")
# Attributes of an smtp_tls_policy_maps entry (Postfix 3.5 to 3.10); their values are one word each.
POLICY_ATTRIBUTES = ("match", "protocols", "ciphers", "exclude", "servername", "tafile", "connection_reuse")


def tls_parameters(
    mode: str, verify: bool, ca_file: str = "", *, level: str | None = None, min_version: str | None = None
) -> dict:
    """The one translation of a TLS mode (starttls | implicit | none) into main.cf parameters.

    ``verify`` checks the relay's certificate against ``ca_file`` and the name the client connected to
    (level ``secure`` with the host name sent as SNI); otherwise the connection is only encrypted. ``level``
    asks for another level instead (``may``: opportunistic STARTTLS; ``fingerprint``: pinned certificates, with
    SHA-256 fingerprints); ``min_version`` (a key of MIN_TLS_VERSIONS) excludes the older protocols.
    ``None`` values remove a parameter that another mode would have set.
    """
    if mode == "none":
        return {
            "smtp_tls_security_level": "none",
            "smtp_tls_wrappermode": "no",
            "smtp_tls_CAfile": None,
            "smtp_tls_servername": None,
            "smtp_tls_loglevel": None,
            "smtp_tls_fingerprint_digest": None,
            "smtp_tls_mandatory_protocols": None,
            "smtp_tls_protocols": None,
        }
    level = level or ("secure" if verify else "encrypt")
    checks_chain = level in VERIFYING_LEVELS
    protocols = ", ".join(MIN_TLS_VERSIONS[min_version]) if min_version else None
    return {
        "smtp_tls_security_level": level,
        "smtp_tls_wrappermode": "yes" if mode == "implicit" else "no",
        "smtp_tls_loglevel": "1",
        "smtp_tls_CAfile": ca_file if checks_chain else None,
        "smtp_tls_servername": "hostname" if checks_chain else None,
        # Postfix 3.5 digests with md5 unless told: pins are SHA-256.
        "smtp_tls_fingerprint_digest": "sha256" if level == "fingerprint" else None,
        "smtp_tls_mandatory_protocols": protocols,
        "smtp_tls_protocols": protocols,
    }


def policy_entry(level: str, match=(), servername: str = "", protocols: str = "") -> str:
    """One smtp_tls_policy_maps value: ``secure match=name servername=name protocols=!SSLv2:!SSLv3``.

    Names in ``match`` are joined with ``:`` (verify, secure), fingerprints with ``|`` (they hold colons).
    """
    words = [level]
    if match:
        words.append("match=" + ("|" if level == "fingerprint" else ":").join(match))
    if servername:
        words.append(f"servername={servername}")
    listed = [p for p in SEPARATORS.split(protocols or "") if p]
    if listed:
        words.append("protocols=" + ":".join(listed))
    return " ".join(words)


def parse_policy(text: str) -> dict:
    """An smtp_tls_policy_maps value -> {level, match: [...], servername, protocols: [...], unknown: [...]}."""
    words = (text or "").split()
    entry = {"level": words[0].lower() if words else "", "match": [], "servername": "", "protocols": [], "unknown": []}
    for word in words[1:]:
        name, has_value, value = word.partition("=")
        name = name.lower()
        if not has_value or name not in POLICY_ATTRIBUTES:
            entry["unknown"].append(word)
        elif name == "match":
            entry["match"].extend(v for v in value.split("|" if entry["level"] == "fingerprint" else ":") if v)
        elif name == "protocols":
            entry["protocols"].extend(v for v in SEPARATORS.split(value.replace(":", " ")) if v)
        elif name == "servername":
            entry["servername"] = value
    return entry


def min_tls_version(protocols) -> str | None:
    """The oldest protocol a protocol list (exclusions, or 3.6's ``>=TLSv1.2``) still allows, when it is 1.2+."""
    words = [w.lower() for w in protocols if w]
    versions = {v.lower(): v for v in MIN_TLS_VERSIONS}
    for word in words:
        if word.startswith(">="):
            return versions.get(word[2:])
    excluded = {w[1:] for w in words if w.startswith("!")}
    for version in reversed(tuple(MIN_TLS_VERSIONS)):
        if {p[1:].lower() for p in MIN_TLS_VERSIONS[version]} <= excluded:
            return version
    return None


def policy_for(policies: dict | None, token: str) -> str | None:
    """The policy table's value for one relayhost destination (Postfix folds keys to lower case), or None."""
    folded = {str(k).lower(): v for k, v in (policies or {}).items()}
    return folded.get(token.lower())


def _relayhost_rules(s: Settings, ctx: dict) -> tuple[list, list]:
    raw = s.get("relayhost")
    if not raw:
        return [
            check(
                "relayhost.missing",
                FAIL,
                "relayhost is empty: Postfix delivers directly to each recipient's MX instead of the relay",
                STAGE,
                "set relayhost = [relay.example.com]:587",
                parameter="relayhost",
            )
        ], []
    try:
        relays = parse_relayhost(raw)
    except RelayhostError as e:
        return [
            check(
                "relayhost.syntax",
                FAIL,
                e.msg,
                STAGE,
                "write [host]:port, e.g. [relay.example.com]:587",
                parameter="relayhost",
            )
        ], []
    out = [
        check(
            "relayhost.syntax",
            PASS,
            f"relayhost {raw} names {len(relays)} destination(s)",
            STAGE,
            parameter="relayhost",
        )
    ]
    for relay in relays:
        if relay["mx_lookup"]:
            bracketed = format_relayhost({"host": relay["host"], "port": relay["port"]})
            out.append(
                check(
                    "relayhost.mx_lookup",
                    WARN,
                    f"relayhost {relay['host']} is not in brackets: Postfix looks up its MX records, "
                    "not the host itself",
                    STAGE,
                    f"for a smarthost write {bracketed}",
                    parameter="relayhost",
                )
            )
    return out, relays


def _tls_rules(s: Settings, relays: list, ctx: dict) -> list:
    out = []
    level = s.tls_level()
    if level not in TLS_LEVELS:
        out.append(
            check(
                "tls.level_unknown",
                FAIL,
                f"smtp_tls_security_level = {level} is not a TLS level Postfix knows",
                STAGE,
                "use one of " + ", ".join(TLS_LEVELS),
                parameter="smtp_tls_security_level",
            )
        )
        return out
    wrapper = s.flag("smtp_tls_wrappermode")
    mode = s.tls_mode()
    wanted = ctx.get("tls")
    if wanted and wanted != mode:
        out.append(
            check(
                "tls.mode_mismatch",
                FAIL,
                f"TLS mode {wanted} was asked for, but smtp_tls_wrappermode = {'yes' if wrapper else 'no'} and "
                f"smtp_tls_security_level = {level} make Postfix use {mode}",
                STAGE,
                _mode_hint(wanted),
                parameter="smtp_tls_wrappermode",
            )
        )
    for relay in relays:
        port, where = relay["port"], _where(relay)
        if port in IMPLICIT_TLS_PORTS:
            ok = wrapper
            out.append(
                check(
                    "tls.wrappermode_required",
                    PASS if ok else FAIL,
                    f"{where} uses implicit TLS and smtp_tls_wrappermode = yes"
                    if ok
                    else f"{where} speaks implicit TLS but smtp_tls_wrappermode = no: Postfix would wait for a "
                    "greeting that never comes",
                    STAGE,
                    None if ok else _mode_hint("implicit"),
                    parameter="smtp_tls_wrappermode",
                )
            )
        if wrapper and port in STARTTLS_PORTS:
            out.append(
                check(
                    "tls.wrappermode_unexpected",
                    FAIL,
                    f"smtp_tls_wrappermode = yes but {where} is a STARTTLS port: the TLS handshake would fail",
                    STAGE,
                    _mode_hint("starttls"),
                    parameter="smtp_tls_wrappermode",
                )
            )
    # A relay with an entry in smtp_tls_policy_maps gets that entry's level, not main.cf's: each is judged.
    policies, policy_checks = _policy_rules(relay_tokens(s.get("relayhost")), relays, ctx)
    out.extend(policy_checks)
    judged = {} if relays and len(policies) == len(relays) else {level: f"smtp_tls_security_level = {level}"}
    for where, entry in policies.items():
        if entry["level"] in TLS_LEVELS:
            judged.setdefault(entry["level"], f"smtp_tls_policy_maps: {where} = {entry['level']}")
    for judged_level, source in judged.items():
        out.extend(_level_rules(s, judged_level, source, wrapper, ctx))
    return out


def _level_rules(s: Settings, level: str, source: str, wrapper: bool, ctx: dict) -> list:
    """What one TLS level means for the relay (``source`` says where the level was set)."""
    out = []
    if wrapper:
        ok = level in ENCRYPTING_LEVELS
        out.append(
            check(
                "tls.wrappermode_level",
                PASS if ok else FAIL,
                f"smtp_tls_wrappermode = yes with {source}"
                + ("" if ok else ": implicit TLS needs level encrypt or stronger"),
                STAGE,
                None if ok else "set smtp_tls_security_level = encrypt (or verify with a CA file)",
                parameter="smtp_tls_security_level",
            )
        )
    elif level == "none":
        out.append(
            check(
                "tls.not_encrypted",
                WARN,
                f"{source}: mail goes to the relay in clear text",
                STAGE,
                "set smtp_tls_security_level = encrypt or verify",
                parameter="smtp_tls_security_level",
            )
        )
    elif level == "may":
        out.append(
            check(
                "tls.opportunistic",
                WARN,
                f"{source}: a network attacker can strip STARTTLS and Postfix sends in clear",
                STAGE,
                "set smtp_tls_security_level = encrypt or verify",
                parameter="smtp_tls_security_level",
            )
        )
    if level in VERIFYING_LEVELS:
        out.extend(_ca_rules(s, level, ctx, source))
    return out


def _policy_rules(tokens: list, relays: list, ctx: dict) -> tuple[dict, list]:
    """({relay: parsed entry} for the relays smtp_tls_policy_maps has an entry for, checks of those entries).

    ``ctx["tls_policies"]``: the table's entries; absent: not known (nothing judged), None: not readable.
    """
    if "tls_policies" not in ctx:
        return {}, []
    if ctx["tls_policies"] is None:
        message = "smtp_tls_policy_maps could not be read: the relay's TLS policy is not known"
        return {}, [check("tls.policy", UNKNOWN, message, STAGE, "run as root", parameter="smtp_tls_policy_maps")]
    policies, out = {}, []
    # Postfix looks the destination up as written in relayhost (brackets, port or service name).
    for token in tokens if len(tokens) == len(relays) else [_where(r) for r in relays]:
        text = policy_for(ctx["tls_policies"], token)
        if text is None:
            continue
        entry = policies[token] = parse_policy(text)
        out.append(_policy_check(token, text, entry))
    return policies, out


def _policy_check(token: str, text: str, entry: dict) -> dict:
    level, problem, status = entry["level"], "", FAIL
    if level not in TLS_LEVELS:
        problem = f"{level or '(empty)'} is not a TLS level Postfix knows"
    elif entry["unknown"]:
        problem = f"Postfix does not know {' '.join(entry['unknown'])}: it defers mail to this relay"
    elif level == "fingerprint" and not entry["match"]:
        problem = "level fingerprint without match=: no certificate can match, every delivery fails"
    elif entry["match"] and level not in ("fingerprint", *VERIFYING_LEVELS):
        problem, status = f"match= is ignored at level {level}: the certificate is not checked", WARN
    if problem:
        hint = "write LEVEL [match=NAME] [protocols=...]; levels: " + ", ".join(TLS_LEVELS)
        message = f"smtp_tls_policy_maps: {token} = {text}: {problem}"
        return check("tls.policy_invalid", status, message, STAGE, hint, parameter="smtp_tls_policy_maps")
    message = f"smtp_tls_policy_maps: {token} = {text}"
    return check("tls.policy", PASS, message, STAGE, parameter="smtp_tls_policy_maps")


def _ca_rules(s: Settings, level: str, ctx: dict, source: str = "") -> list:
    source = source or f"smtp_tls_security_level = {level}"
    ca_file, ca_path = s.get("smtp_tls_CAfile"), s.get("smtp_tls_CApath")
    if not (ca_file or ca_path or s.flag("tls_append_default_CA")):
        return [
            check(
                "tls.verify_without_ca",
                FAIL,
                f"{source} checks the relay's certificate, but no CA is configured "
                "(smtp_tls_CAfile and smtp_tls_CApath are empty, tls_append_default_CA = no)",
                STAGE,
                "set smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt (or the relay's CA)",
                parameter="smtp_tls_CAfile",
            )
        ]
    out = [
        check("tls.verify_without_ca", PASS, f"level {level} with a CA configured", STAGE, parameter="smtp_tls_CAfile")
    ]
    exists = ctx.get("file_exists") or {}
    for name, path in (("smtp_tls_CAfile", ca_file), ("smtp_tls_CApath", ca_path)):
        if path and exists.get(path) is False:
            out.append(
                check(
                    "tls.ca_missing",
                    FAIL,
                    f"{name} = {path} does not exist on the host",
                    STAGE,
                    "install the CA file or fix the path",
                    parameter=name,
                )
            )
    return out


def _mode_hint(mode: str) -> str:
    return {
        "implicit": "set smtp_tls_wrappermode = yes and smtp_tls_security_level = encrypt (port 465)",
        "starttls": "set smtp_tls_wrappermode = no and smtp_tls_security_level = encrypt (port 587)",
        "none": "set smtp_tls_wrappermode = no and smtp_tls_security_level = none",
    }[mode]


def _where(relay: dict) -> str:
    return format_relayhost({"host": relay["host"], "port": relay["port"], "mx_lookup": relay["mx_lookup"]})


def _sasl_rules(s: Settings, raw_relayhost: str, relays: list, ctx: dict) -> list:
    out = []
    keys = ctx.get("sasl_keys")
    enabled = s.flag("smtp_sasl_auth_enable")
    tokens = relay_tokens(raw_relayhost) if relays else []
    folded = {k.lower() for k in keys or ()}
    matching = [t for t in tokens if t.lower() in folded]
    if not enabled:
        if matching:
            out.append(
                check(
                    "sasl.not_enabled",
                    WARN,
                    f"the SASL map has credentials for {matching[0]} but smtp_sasl_auth_enable = no: "
                    "Postfix never authenticates",
                    STAGE,
                    "set smtp_sasl_auth_enable = yes",
                    parameter="smtp_sasl_auth_enable",
                )
            )
        return out
    bad = [
        w
        for w in s.words("smtp_sasl_security_options") + s.words("smtp_sasl_tls_security_options")
        if w not in SASL_OPTIONS
    ]
    if bad:
        out.append(
            check(
                "sasl.security_options_invalid",
                FAIL,
                f"unknown SASL security option(s): {', '.join(sorted(set(bad)))}",
                STAGE,
                "use " + ", ".join(SASL_OPTIONS),
                parameter="smtp_sasl_security_options",
            )
        )
    level = s.tls_level()
    if level == "none":
        allowed = bool(ctx.get("allow_plaintext_auth"))
        out.append(
            check(
                "sasl.without_encryption",
                WARN if allowed else FAIL,
                "smtp_sasl_auth_enable = yes over an unencrypted connection: the password crosses the network "
                "in clear (smtp_tls_security_level = none)" + (", as explicitly allowed" if allowed else ""),
                STAGE,
                "set smtp_tls_security_level = encrypt or verify",
                parameter="smtp_tls_security_level",
            )
        )
    elif level == "may":
        out.append(
            check(
                "sasl.without_encryption",
                WARN,
                "smtp_sasl_auth_enable = yes with smtp_tls_security_level = may: if STARTTLS is stripped the "
                "password may be sent in clear",
                STAGE,
                "set smtp_tls_security_level = encrypt or verify",
                parameter="smtp_tls_security_level",
            )
        )
    elif level in TLS_LEVELS:
        out.append(
            check(
                "sasl.without_encryption",
                PASS,
                f"SASL only over TLS (level {level})",
                STAGE,
                parameter="smtp_tls_security_level",
            )
        )
    if not s.get("smtp_sasl_password_maps"):
        out.append(
            check(
                "sasl.no_password_maps",
                FAIL,
                "smtp_sasl_auth_enable = yes but smtp_sasl_password_maps is empty",
                STAGE,
                "set smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd",
                parameter="smtp_sasl_password_maps",
            )
        )
    elif keys is not None and tokens:
        out.append(_key_rule(tokens, matching, keys, s.flag("smtp_sender_dependent_authentication")))
    out.extend(_mechanism_rules(s, ctx))
    return out


def _key_rule(tokens: list, matching: list, keys, by_sender: bool = False) -> dict:
    # Sender keys (an address or @domain; a next hop never holds "@") are read only with sender-dependent
    # authentication, and then before the next hop: the relayhost itself may need no credentials.
    senders = sorted(k for k in keys if "@" in k)
    if matching:
        return check(
            "sasl.key_mismatch",
            PASS,
            f"the SASL map has a key written exactly as {matching[0]}",
            STAGE,
            parameter="smtp_sasl_password_maps",
        )
    if by_sender and senders:
        return check(
            "sasl.key_mismatch",
            PASS,
            f"the SASL map has credentials by sender ({', '.join(senders[:3])}{', ...' if len(senders) > 3 else ''}); "
            f"mail from other senders goes to {tokens[0]} without AUTH",
            STAGE,
            parameter="smtp_sasl_password_maps",
        )
    hops = [k.lower() for k in keys if "@" not in k]
    near = difflib.get_close_matches(tokens[0].lower(), hops, n=1, cutoff=0.5)
    empty = "; the map has sender keys only" if keys else "; the map is empty"
    found = f"; the closest key is {near[0]}" if near else ("" if hops else empty)
    unused = (
        f"; the sender keys ({', '.join(senders[:3])}) are read only with smtp_sender_dependent_authentication = yes"
        if senders
        else ""
    )
    return check(
        "sasl.key_mismatch",
        FAIL,
        f"no key in smtp_sasl_password_maps is written exactly like the relayhost {tokens[0]}{found}: "
        "Postfix would not authenticate",
        STAGE,
        f"write the map key as {tokens[0]} (same brackets and port as relayhost){unused}",
        parameter="smtp_sasl_password_maps",
    )


def _mechanism_rules(s: Settings, ctx: dict) -> list:
    out = []
    plugins = ctx.get("sasl_plugins")
    available = None if plugins is None else plugin_mechanisms(plugins)
    offered = ctx.get("offered_mechanisms")
    tls_active = ctx.get("tls_active", s.tls_mode() != "none")
    if offered:
        permitted = permitted_mechanisms(s, offered, tls_active)
        options = ", ".join(sasl_options(s, tls_active))
        param = "smtp_sasl_tls_security_options" if tls_active else "smtp_sasl_security_options"
        if not permitted:
            out.append(
                check(
                    "sasl.no_worthy_mechs",
                    FAIL,
                    f"the relay offers {' '.join(offered)} but {param} ({options}) rules all of them out: "
                    "Postfix fails with 'No worthy mechs found'",
                    STAGE,
                    f"set {param} = noanonymous (the connection is encrypted)"
                    if tls_active
                    else "encrypt the connection first (smtp_tls_security_level = encrypt), then relax the options",
                    parameter=param,
                )
            )
        else:
            out.append(
                check("sasl.no_worthy_mechs", PASS, f"Postfix may use {', '.join(permitted)}", STAGE, parameter=param)
            )
            if available is not None:
                usable = [m for m in permitted if m in available]
                out.append(_plugin_check(usable, permitted, sorted(available)))
    elif available is not None:
        common = [m for m in ("PLAIN", "LOGIN") if m in available]
        out.append(
            check(
                "sasl.plugins_missing",
                PASS if common else WARN,
                f"SASL client plugins installed for {', '.join(sorted(available)) or 'no mechanism'}",
                STAGE,
                None if common else f"install {SASL_PLUGIN_PACKAGES} (PLAIN and LOGIN)",
            )
        )
    return out


def _plugin_check(usable: list, permitted: list, available: list) -> dict:
    if usable:
        return check("sasl.plugins_missing", PASS, f"a SASL plugin is installed for {', '.join(usable)}", STAGE)
    return check(
        "sasl.plugins_missing",
        FAIL,
        f"no SASL client plugin is installed for {', '.join(permitted)} (installed: {', '.join(available) or 'none'}): "
        "Postfix fails with 'No worthy mechs found'",
        STAGE,
        f"install {SASL_PLUGIN_PACKAGES}",
    )


# Parameters of other Postfix services share most of their name with the SMTP client's (smtpd_tls_CAfile vs
# smtp_tls_CAfile): they are not typos of them.
_SERVICE_PREFIXES = ("smtpd_", "lmtp_", "postscreen_", "tlsproxy_", "local_", "virtual_", "milter_", "lmtpd_")


def _other_service(name: str, match: str) -> bool:
    return any(name.startswith(p) != match.startswith(p) for p in _SERVICE_PREFIXES)


def parameter_checks(settings: dict, context: dict | None = None) -> list[dict]:
    """Only the rules about parameter names and booleans (what postconf checks before writing)."""
    return _parameter_rules(Settings(settings), context or {})


def _parameter_rules(s: Settings, ctx: dict) -> list:
    out = []
    known = ctx.get("known_parameters")
    known = set(known) if known else None
    candidates = sorted(set(RELAY_PARAMETERS) | (known or set()))
    configured = ctx.get("configured")
    for name in sorted(s.values if configured is None else set(configured) & set(s.values)):
        value = s.values[name]
        if name in OBSOLETE:
            out.append(
                check("params.obsolete", WARN, f"{name} is obsolete", STAGE, f"use {OBSOLETE[name]}", parameter=name)
            )
        elif (known is None and name not in RELAY_PARAMETERS) or (known is not None and name not in known):
            near = difflib.get_close_matches(name, candidates, n=1, cutoff=0.85)
            if near and _other_service(name, near[0]):
                near = []
            if near:
                out.append(
                    check(
                        "params.mistyped",
                        FAIL,
                        f"{name} is not a Postfix parameter; did you mean {near[0]}?",
                        STAGE,
                        f"rename {name} to {near[0]}",
                        parameter=name,
                    )
                )
            elif known is not None:
                out.append(
                    check(
                        "params.unknown",
                        WARN,
                        f"{name} is not a Postfix parameter (Postfix ignores it)",
                        STAGE,
                        "remove it unless master.cf refers to it",
                        parameter=name,
                    )
                )
        is_bool = name in BOOLEANS or (
            known is not None and ctx.get("boolean_parameters") and name in ctx["boolean_parameters"]
        )
        text = value.strip()
        if is_bool and "$" not in text and text.lower() not in ("yes", "no"):
            out.append(
                check(
                    "params.bad_boolean",
                    FAIL,
                    f"{name} = {text or '(empty)'}: Postfix daemons exit with 'bad boolean configuration'",
                    STAGE,
                    f"set {name} = yes or {name} = no",
                    parameter=name,
                )
            )
    return out


def static_checks(settings: dict, context: dict | None = None) -> list[dict]:
    """All static rules over main.cf ``settings``; ``context`` keys (all optional):

    ``tls`` (mode asked for), ``allow_plaintext_auth`` (SASL without TLS is a warning, not a failure),
    ``sasl_keys`` (SASL map keys; None: unknown), ``offered_mechanisms`` (AUTH after
    TLS, from a probe), ``tls_active``, ``sasl_plugins`` (installed Cyrus client plugin names; None: unknown),
    ``tls_policies`` (entries of smtp_tls_policy_maps; None: not readable; absent: not known),
    ``known_parameters`` and ``boolean_parameters`` (from ``postconf -d``), ``configured`` (names set in main.cf,
    when ``settings`` also holds defaults: only these are checked for typos, obsolete names and booleans),
    ``file_exists`` ({path: bool}).
    """
    ctx = context or {}
    s = Settings(settings)
    out, relays = _relayhost_rules(s, ctx)
    out.extend(_tls_rules(s, relays, ctx))
    out.extend(_sasl_rules(s, s.get("relayhost"), relays, ctx))
    out.extend(_parameter_rules(s, ctx))
    return out
