# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: sender address and domain names: syntax, IDNA, special-use names, approved lists, and
sender_check's checks of them (address.*, domain.*, and mx.*: does the name exist and take mail).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP, UNKNOWN, WARN, check, shown
from ansible_collections.smtp.relay.plugins.module_utils._dns import NXDOMAIN, Resolver
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


def is_under(name: str, suffix: str) -> bool:
    """``name`` is ``suffix`` or a name below it (by labels: x.example.org is under example.org, xexample.org not)."""
    return name == suffix or name.endswith("." + suffix)


def special_use(name: str) -> str | None:
    """The reserved name ``name`` falls under, if any."""
    for suffix in (*DOCUMENTATION_DOMAINS, *SPECIAL_USE_SUFFIXES):
        if is_under(name, suffix):
            return suffix
    return None


def placeholder(name: str) -> str | None:
    return next((p for p in PLACEHOLDER_DOMAINS if is_under(name, p)), None)


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


# --- checks ----------------------------------------------------------------------------------------------------------


@dataclass
class Sender:
    """One domain to report on, with the addresses that brought it in and the name checks already done."""

    key: str
    domain: str | None
    addresses: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    dns: bool = True  # False once a name check makes DNS questions pointless


def collect_senders(addresses, domains) -> dict[str, Sender]:
    """Group addresses and domains by normalized domain, with the address and domain syntax checks."""
    senders: dict[str, Sender] = {}

    def sender_for(raw_domain: str) -> Sender:
        try:
            name = normalize_domain(raw_domain)
        except ValueError as exc:
            key = str(raw_domain)
            sender = senders.setdefault(key, Sender(key, None))
            if not sender.checks:
                sender.dns = False
                sender.checks.append(check("domain.syntax", FAIL, f"{raw_domain!r} {exc}", "name"))
            return sender
        if name not in senders:
            senders[name] = Sender(name, name)
            note = f" (normalized to {name})" if name != str(raw_domain).strip().rstrip(".") else ""
            senders[name].checks.append(check("domain.syntax", PASS, f"{name} is a valid domain name{note}", "name"))
        return senders[name]

    for raw in addresses or []:
        try:
            local, domain = split_address(raw)
        except ValueError as exc:
            key = str(raw)
            senders.setdefault(key, Sender(key, None, dns=False)).checks.append(
                check("address.syntax", FAIL, f"{raw!r} {exc}", "name", address=str(raw))
            )
            continue
        sender = sender_for(domain)
        sender.addresses.append(str(raw).strip())
        if local.isascii():
            sender.checks.append(check("address.syntax", PASS, f"{raw} is a valid address", "name", address=raw))
        else:
            sender.checks.append(
                check(
                    "address.syntax",
                    WARN,
                    f"{raw} has a non-ASCII local part",
                    "name",
                    hint="such addresses need SMTPUTF8 on every hop; many relays refuse them",
                    address=raw,
                )
            )
    for raw in domains or []:
        sender_for(raw)
    return senders


def name_checks(sender: Sender, rules: list[DomainRule], rewrite_domain: str | None) -> None:
    """Special-use, placeholder and approved-list checks; special-use names get no DNS questions."""
    name = sender.domain
    reserved = special_use(name)
    if reserved:
        sender.dns = False
        sender.checks.append(
            check(
                "domain.special_use",
                FAIL,
                f"{name} is under the reserved name {reserved}: never a sender domain of real mail",
                "name",
                hint="use a domain your organization owns and publishes DNS for",
            )
        )
    else:
        sender.checks.append(check("domain.special_use", PASS, f"{name} is not a reserved name", "name"))
    fake = placeholder(name)
    sender.checks.append(
        check(
            "domain.placeholder",
            WARN,
            f"{name} is a real domain owned by someone else ({fake})",
            "name",
            hint="it is often typed as a fake address; mail from it fails SPF/DMARC and may reach strangers",
        )
        if fake
        else check("domain.placeholder", PASS, f"{name} is not a known placeholder domain", "name")
    )
    sender.checks.append(_allowed_check(name, rules, rewrite_domain))


def _allowed_check(name: str, rules: list[DomainRule], rewrite_domain: str | None) -> dict:
    if not rules:
        return check("domain.not_allowed", SKIP, "no allowed_domains given", "policy")
    listed = ", ".join(str(r) for r in rules)
    rule = matching_rule(rules, name)
    if rule:
        return check("domain.not_allowed", PASS, f"{name} is allowed by {rule}", "policy", relay_action="accept")
    hint = f"add {name} (or *.{name} for its subdomains) to the relay's approved list, or send as an approved domain"
    if rewrite_domain:
        return check(
            "domain.not_allowed",
            WARN,
            f"{name} is not in the approved list ({listed}): the relay rewrites the sender to {rewrite_domain}",
            "policy",
            hint=hint,
            relay_action="rewrite",
            rewrite_to=rewrite_domain,
        )
    return check(
        "domain.not_allowed",
        FAIL,
        f"{name} is not in the approved list ({listed}): the relay rejects it",
        "policy",
        hint=hint,
        relay_action="reject",
    )


def existence_checks(resolver: Resolver, name: str) -> tuple[list[dict], bool]:
    """domain.exists and mx.*; the bool is False when the name does not exist (nothing more to ask)."""
    answer = resolver.query(name, "MX")
    if answer.status == NXDOMAIN:
        return [
            check(
                "domain.exists",
                FAIL,
                f"{name} does not exist (NXDOMAIN)",
                "dns",
                hint="receivers reject senders whose domain does not exist",
            )
        ], False
    if not answer.answered:
        return [check("domain.exists", UNKNOWN, f"no answer for {name} ({answer.status})", "dns")], True
    checks = [check("domain.exists", PASS, f"{name} exists", "dns")]
    exchanges = sorted(answer.records)
    if any(exchange in ("", ".") for _unused, exchange in exchanges):
        checks.append(
            check(
                "mx.null",
                FAIL,
                f"{name} publishes a null MX: it accepts no mail",
                "dns",
                hint="receivers may reject mail from a domain that cannot take replies or bounces (RFC 7505)",
            )
        )
    elif exchanges:
        hosts = ", ".join(exchange for _unused, exchange in exchanges)
        checks.append(check("mx.present", PASS, f"{name} receives mail at {hosts}", "dns"))
    else:
        checks.append(
            check(
                "mx.present",
                WARN,
                f"{name} has no MX record",
                "dns",
                hint="replies and bounces then go to its A record, which rarely runs a mail server",
            )
        )
    return checks, True
