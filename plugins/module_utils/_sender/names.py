# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: sender address and domain names: syntax, IDNA, special-use names, approved lists."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.smtp.relay.plugins.module_utils._checks import shown
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError

try:  # IDNA 2008 when the host has it (dnspython pulls it in); the stdlib codec is IDNA 2003.
    import idna as _idna
except ImportError:  # pragma: no cover - depends on the host
    _idna = None

# RFC 6761 / 6762 / 7686 / 9476 special-use names, RFC 2606 reserved names, and .internal (ICANN, 2024):
# none of them can be the sender domain of mail that leaves the building.
SPECIAL_USE_SUFFIXES = ("test", "example", "invalid", "localhost", "local", "onion", "arpa", "alt", "internal")
DOCUMENTATION_DOMAINS = ("example.com", "example.net", "example.org")
# Real, owned domains that people type as fake addresses: mail "from" them is someone else's.
PLACEHOLDER_DOMAINS = (
    "domain.com",
    "email.com",
    "test.com",
    "sample.com",
    "mydomain.com",
    "yourdomain.com",
    "company.com",
    "acme.com",
)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ATEXT = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_QUOTED = re.compile(r'^"([\x20\x21\x23-\x5b\x5d-\x7e]|\\[\x20-\x7e])*"$')


def normalize_domain(raw: str) -> str:
    """Lower-case A-label form of a domain; ValueError says what is wrong with it."""
    if not isinstance(raw, str):
        raise ValueError("is not text")
    if not raw.strip():
        raise ValueError("empty domain")
    text = raw.strip()
    if any(ord(c) < 0x20 or c.isspace() for c in text):
        raise ValueError("contains whitespace or control characters")
    text = text[:-1] if text.endswith(".") else text
    if "@" in text:
        raise ValueError("contains '@' (give the domain, or the address under addresses)")
    labels = []
    for label in text.split("."):
        if not label:
            raise ValueError("has an empty label")
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(_idna.encode(label, uts46=True).decode() if _idna else label.encode("idna").decode())
        except Exception as exc:  # both codecs raise several types for one meaning: not a valid IDN label
            raise ValueError(f"label {label!r} is not a valid internationalized name ({exc})") from None
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"label {label!r} must be 1-63 letters, digits or inner hyphens")
    name = ".".join(labels)
    if len(name) > 253:
        raise ValueError("is longer than 253 characters")
    if len(labels) < 2:
        raise ValueError("needs at least two labels (a name under a top-level domain)")
    if labels[-1].isdigit():
        raise ValueError("ends in a numeric label (an IP address is not a sender domain)")
    return name


def split_address(raw: str) -> tuple[str, str]:
    """(local part, domain as given) of an address; ValueError when it is not one."""
    if not isinstance(raw, str) or "@" not in raw:
        raise ValueError("is not local@domain")
    text = raw.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1]
    local, _unused, domain = text.rpartition("@")
    if not local:
        raise ValueError("has an empty local part")
    if not local.isprintable():
        # Also what the patterns below would miss: "$" matches before a final newline.
        raise ValueError("has control, format or line-separator characters in its local part")
    if len(local.encode()) > 64:
        raise ValueError("has a local part longer than 64 octets")
    if not (_ATEXT.match(local) or _QUOTED.match(local) or not local.isascii()):
        raise ValueError(f"local part {local!r} is neither a dot-atom nor a quoted string")
    return local, domain


def _under(name: str, suffix: str) -> bool:
    return name == suffix or name.endswith("." + suffix)


def special_use(name: str) -> str | None:
    """The reserved name ``name`` falls under, if any."""
    for suffix in (*DOCUMENTATION_DOMAINS, *SPECIAL_USE_SUFFIXES):
        if _under(name, suffix):
            return suffix
    return None


def placeholder(name: str) -> str | None:
    return next((p for p in PLACEHOLDER_DOMAINS if _under(name, p)), None)


@dataclass(frozen=True)
class DomainRule:
    """``example.org`` admits exactly that name; ``*.example.org`` admits its subdomains, not the apex."""

    domain: str
    subdomains: bool

    def admits(self, name: str) -> bool:
        return name.endswith("." + self.domain) if self.subdomains else name == self.domain

    def __str__(self) -> str:
        return ("*." if self.subdomains else "") + self.domain


def parse_rules(entries, field_name: str = "allowed_domains") -> list[DomainRule]:
    rules = []
    for entry in entries or []:
        text = entry.strip() if isinstance(entry, str) else entry
        wildcard = isinstance(text, str) and text.startswith("*.")
        try:
            domain = normalize_domain(text[2:] if wildcard else text)
        except ValueError as exc:
            raise SmtpRelayError(
                f"{field_name}: {shown(entry)} {exc}; accepted: a domain (example.org) or its subdomains "
                "(*.example.org)",
                field=field_name,
            ) from None
        rules.append(DomainRule(domain, wildcard))
    return rules


def matching_rule(rules: list[DomainRule], name: str) -> DomainRule | None:
    return next((r for r in rules if r.admits(name)), None)
