# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the TLS policy of the plan (one smtp_tls_policy_maps entry per relay) and the relay's
name lookup (smtp_host_lookup).

``tls_choices`` reads and checks the variables before main.cf is built (their main.cf side goes through
``_rules.tls_parameters``, the one translation of a TLS mode); ``policy_table`` writes the table from the final
main.cf, after postfix_main_cf, so that the table and main.cf's defaults say the same for every relay.
"""

from __future__ import annotations

import re

from ansible_collections.smtp.relay.plugins.module_utils._plan.inputs import text_variable, variable_error
from ansible_collections.smtp.relay.plugins.module_utils._postfix.settings import Settings
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import relay_tokens
from ansible_collections.smtp.relay.plugins.module_utils._rules import (
    HOST_LOOKUPS,
    MIN_TLS_VERSIONS,
    VERIFYING_LEVELS,
    policy_entry,
)

TLS_POLICY_MAP = "tls_policy"
DEFAULT_MIN_VERSION = "TLSv1.2"
DEFAULT_HOST_LOOKUP = "dns"  # Postfix's own default, written out so that relay_check and the README say the same
# Words match= reads as strategies, not names (smtp_tls_secure_cert_match).
_MATCH_KEYWORDS = ("hostname", "nexthop", "dot-nexthop")
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_NAME = re.compile(rf"(\*\.)?{_LABEL}(\.{_LABEL})*")
_HEX = re.compile(r"[0-9A-Fa-f]{64}")


def _tls_name(variables: dict) -> str:
    name = text_variable(variables, "postfix_relay_tls_name").rstrip(".")
    if name and (not _NAME.fullmatch(name) or len(name) > 253 or name.lower() in _MATCH_KEYWORDS):
        raise variable_error(
            "postfix_relay_tls_name",
            f"{name!r} is not a host name a certificate can hold",
            "give the name on the relay's certificate, for example smtp.provider.example",
        )
    return name.lower()


def _fingerprints(variables: dict) -> list[str]:
    """SHA-256 fingerprints as Postfix prints them (AB:CD:...), from any case, with or without colons."""
    given = variables.get("postfix_relay_tls_fingerprints") or []
    if isinstance(given, str) or not isinstance(given, (list, tuple)):
        raise variable_error("postfix_relay_tls_fingerprints", "is not a list", "give a list of SHA-256 fingerprints")
    result = []
    for index, value in enumerate(given):
        digits = value.strip().replace(":", "") if isinstance(value, str) else ""
        if not _HEX.fullmatch(digits):
            raise variable_error(
                f"postfix_relay_tls_fingerprints[{index}]",
                f"{value!r} is not a SHA-256 fingerprint",
                "64 hexadecimal digits, with or without colons "
                "(openssl x509 -noout -fingerprint -sha256 -in relay.pem)",
            )
        result.append(":".join(digits[i : i + 2] for i in range(0, 64, 2)).upper())
    return list(dict.fromkeys(result))


def _choice(variables: dict, name: str, choices, default):
    value = text_variable(variables, name) or default
    if value is not None and value not in choices:
        raise variable_error(name, f"unknown value {value!r}", "accepted: " + ", ".join(choices))
    return value


def tls_choices(variables: dict, mode: str, verify: bool) -> dict:
    """The TLS policy variables, checked against each other and the TLS mode; refuses naming the variable.

    Returns ``name``, ``fingerprints``, ``min_version``, ``level`` (None: the mode's own), ``host_lookup`` and
    ``parameters`` (the keyword arguments of ``tls_parameters``).
    """
    name = _tls_name(variables)
    fingerprints = _fingerprints(variables)
    min_version = _choice(variables, "postfix_relay_tls_min_version", MIN_TLS_VERSIONS, DEFAULT_MIN_VERSION)
    opportunistic = bool(variables.get("postfix_relay_tls_opportunistic"))
    host_lookup = _choice(variables, "postfix_relay_host_lookup", HOST_LOOKUPS, DEFAULT_HOST_LOOKUP)
    asked = [n for n, v in (("postfix_relay_tls_name", name), ("postfix_relay_tls_fingerprints", fingerprints)) if v]
    if opportunistic:
        asked.append("postfix_relay_tls_opportunistic")
    if mode == "none" and asked:
        raise variable_error(asked[0], "has no effect with postfix_relay_tls: none", "turn TLS on, or leave it unset")
    if opportunistic and mode == "implicit":
        raise variable_error(
            "postfix_relay_tls_opportunistic",
            "implicit TLS cannot fall back to clear text (level may)",
            "use it with postfix_relay_tls: starttls; postfix_relay_tls_verify: false only encrypts",
        )
    if opportunistic and (name or fingerprints):
        raise variable_error(
            asked[0], "is not checked with postfix_relay_tls_opportunistic (level may checks no certificate)"
        )
    if name and fingerprints:
        raise variable_error(
            "postfix_relay_tls_name",
            "is not checked with postfix_relay_tls_fingerprints (pinning checks the fingerprint, not the name)",
            "give one of them",
        )
    if name and not verify:
        raise variable_error(
            "postfix_relay_tls_name",
            "is not checked with postfix_relay_tls_verify: false (level encrypt checks no name)",
            "verify the certificate, or leave the name unset",
        )
    level = "may" if opportunistic else "fingerprint" if fingerprints else None
    return {
        "name": name,
        "fingerprints": fingerprints,
        "min_version": min_version,
        "level": level,
        "host_lookup": host_lookup,
        "parameters": {"level": level, "min_version": None if mode == "none" else min_version},
    }


def policy_table(main_cf: dict, relayhost: str, choices: dict) -> dict:
    """{destination as written in relayhost (backups too): policy} from the final main.cf; {} without TLS.

    The entry repeats main.cf's level and protocols (postfix_main_cf may have changed them) and adds what is
    particular to the relay: the expected name (sent as SNI too, as a provider behind a port-forward needs) or the
    pinned fingerprints.
    """
    s = Settings(main_cf)
    level = s.tls_level()
    if level == "none" or not relayhost:
        return {}
    if choices["name"] and level not in VERIFYING_LEVELS:
        raise variable_error(
            "postfix_relay_tls_name",
            f"smtp_tls_security_level = {level} (postfix_main_cf) does not check the certificate's name",
            "remove smtp_tls_security_level from postfix_main_cf",
        )
    if choices["fingerprints"] and level != "fingerprint":
        raise variable_error(
            "postfix_relay_tls_fingerprints",
            f"smtp_tls_security_level = {level} (postfix_main_cf) does not check fingerprints",
            "remove smtp_tls_security_level from postfix_main_cf",
        )
    name = [choices["name"]] if choices["name"] else []
    match = choices["fingerprints"] if level == "fingerprint" else name
    protocols = s.get("smtp_tls_protocols" if level == "may" else "smtp_tls_mandatory_protocols")
    entry = policy_entry(level, match, choices["name"], protocols)
    return dict.fromkeys(relay_tokens(relayhost), entry)
