# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: main.cf values as Postfix reads them (defaults, ``$name`` expansion, TLS level).

The value model every reader shares: the rules (``_rules.py``), the plan, relay_check and relay_info.
"""

from __future__ import annotations

import re

from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import SEPARATORS

# Postfix's built-in values for the parameters the rules read (Postfix 3.7); used when a name is absent.
DEFAULTS = {
    "relayhost": "",
    "smtp_tls_security_level": "",
    "smtp_use_tls": "no",
    "smtp_enforce_tls": "no",
    "smtp_tls_wrappermode": "no",
    "smtp_tls_CAfile": "",
    "smtp_tls_CApath": "",
    "tls_append_default_CA": "no",
    "smtp_tls_servername": "",
    "smtp_tls_verify_cert_match": "hostname",
    "smtp_tls_secure_cert_match": "nexthop, dot-nexthop",
    "smtp_sasl_auth_enable": "no",
    "smtp_sasl_password_maps": "",
    "smtp_sasl_security_options": "noplaintext, noanonymous",
    "smtp_sasl_tls_security_options": "$smtp_sasl_security_options",
    "smtp_sasl_mechanism_filter": "",
    "compatibility_level": "0",
}

_REFERENCE = re.compile(r"\$(?:\{(\w+)\}|\((\w+)\)|(\w+))")
# $name expansion is bounded: a crafted main.cf (a = $b$b, b = $c$c...) would otherwise grow exponentially.
_MAX_DEPTH = 10
_MAX_EXPANDED = 65536


class Settings:
    """main.cf values as Postfix would read them: given values first, then built-in defaults, $names expanded."""

    def __init__(self, values: dict, defaults: dict | None = None):
        # None means "remove", i.e. back to Postfix's default: the same as absent.
        self.values = {str(k): str(v) for k, v in (values or {}).items() if v is not None}
        self.defaults = dict(DEFAULTS, **(defaults or {}))

    def raw(self, name: str) -> str:
        if name in self.values:
            return self.values[name]
        if name == "smtp_tls_security_level" and compat_at_least(self.raw("compatibility_level"), (3, 11)):
            return "may"
        return self.defaults.get(name, "")

    def get(self, name: str) -> str:
        return self._expand(self.raw(name), 0)[:_MAX_EXPANDED].strip()

    def _expand(self, value: str, depth: int) -> str:
        if depth > _MAX_DEPTH or "$" not in value or len(value) > _MAX_EXPANDED:
            return value
        budget = [_MAX_EXPANDED]

        def one(match) -> str:
            if budget[0] <= 0:
                return ""
            text = self._expand(self.raw(next(g for g in match.groups() if g)), depth + 1)[: budget[0]]
            budget[0] -= len(text)
            return text

        return _REFERENCE.sub(one, value)

    def flag(self, name: str) -> bool:
        return self.get(name).lower() == "yes"

    def words(self, name: str) -> list[str]:
        return [w for w in SEPARATORS.split(self.get(name).lower()) if w]

    def tls_level(self) -> str:
        """Effective smtp_tls_security_level, with the obsolete smtp_use_tls/smtp_enforce_tls when it is empty."""
        level = self.get("smtp_tls_security_level").lower()
        if level:
            return level
        if self.flag("smtp_enforce_tls"):
            return "encrypt"
        return "may" if self.flag("smtp_use_tls") else "none"

    def tls_mode(self) -> str:
        """starttls | implicit | none: how the Postfix SMTP client would talk to the relay."""
        if self.flag("smtp_tls_wrappermode"):
            return "implicit"
        return "none" if self.tls_level() == "none" else "starttls"


def compat_at_least(value: str, wanted: tuple) -> bool:
    try:
        parts = tuple(int(p) for p in str(value).strip().split("."))
    except ValueError:
        return False
    return parts >= wanted
