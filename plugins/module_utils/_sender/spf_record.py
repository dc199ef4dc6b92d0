# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the SPF record grammar (RFC 7208 4.5, 4.6.1, 5, 6, 7.1 and its ABNF), no DNS.

A record that does not parse here is one that receivers answer with permerror: the RFC 7208 test suite's syntax
cases run through ``parse_record`` (tests/unit/plugins/module_utils/test_spf_rfc7208.py). One deliberate difference:
a literal domain-spec with an empty label or a label over 63 octets is refused, where the RFC lets a receiver treat
it as a name that does not exist; such a name can never match, so the owner should hear about it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
# Mechanisms whose domain-spec is optional ("a", "a:example.org"); a ":" with nothing after it is still an error.
_OPTIONAL_DOMAIN = ("a", "mx", "ptr")
_NO_CIDR = ("include", "exists", "ptr")
CIDR_MAX = {"ip4": 32, "ip6": 128}

_RE_SPF = re.compile(r"^v=spf1( |$)", re.IGNORECASE | re.ASCII)
# Any character outside visible ASCII and the space: SPF records are 7-bit ASCII, terms separated by spaces only.
_RE_NOT_SPF_TEXT = re.compile(r"[^\x20-\x7e]")
_RE_MODIFIER = re.compile(r"^([a-z][a-z0-9_.-]*)=(.*)$", re.IGNORECASE | re.ASCII)
_RE_MECHANISM = re.compile(r"^([a-z][a-z0-9]*)(.*)$", re.IGNORECASE | re.ASCII)
# macro-expand; c, r and t are allowed in explanation text only (7.1), never in a record.
_RE_MACRO = re.compile(r"%(?:\{[slodiphv][0-9]*r?[.+,/_=-]*\}|%|_|-)", re.IGNORECASE | re.ASCII)
# RFC 7208's ALPHA and DIGIT are ASCII: \d would also take other scripts' digits, which int() then reads.
# toplabel: letters and digits with at least one letter, or with an inner hyphen.
_RE_TOPLABEL = re.compile(r"^(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])\Z")
_RE_DUAL_CIDR = re.compile(r"^(.*?)(?:/([0-9]+))?(?://([0-9]+))?$")
_RE_NETWORK = re.compile(r"^([^/]*)(?:/([0-9]+))?$")


def spf_records(txts: list[str]) -> list[str]:
    """The TXT strings that are SPF version 1 records (RFC 7208 4.5)."""
    return [t for t in txts if _RE_SPF.match(t)]


@dataclass(frozen=True)
class Term:
    qualifier: str
    name: str
    value: str | None
    cidr4: int | None = None
    cidr6: int | None = None

    @property
    def has_macro(self) -> bool:
        return bool(self.value and "%" in self.value)


def parse_record(record: str) -> tuple[list[Term], dict[str, str]]:
    """Mechanisms and modifiers of one record; ValueError names the first bad term (a permerror)."""
    if not _RE_SPF.match(record):
        raise ValueError("does not start with v=spf1")
    bad = _RE_NOT_SPF_TEXT.search(record)
    if bad:
        raise ValueError(
            f"character U+{ord(bad.group()):04X} at position {bad.start()}: an SPF record is 7-bit ASCII "
            "with terms separated by spaces only"
        )
    terms: list[Term] = []
    modifiers: dict[str, str] = {}
    for raw in record.split(" ")[1:]:
        if not raw:
            continue
        mod = _RE_MODIFIER.match(raw)
        if mod:
            key = mod.group(1).lower()
            if key in ("redirect", "exp"):
                if key in modifiers:
                    raise ValueError(f"{key}= given twice")
                _check_domain_spec(mod.group(2), raw)
            else:
                _check_macro_string(mod.group(2), raw)
            modifiers[key] = mod.group(2)
            continue
        terms.append(_directive(raw))
    return terms, modifiers


def _directive(raw: str) -> Term:
    qualifier = raw[0] if raw[0] in "+-~?" else "+"
    body = raw[1:] if raw[0] in "+-~?" else raw
    match = _RE_MECHANISM.match(body)
    if not match or match.group(1).lower() not in MECHANISMS:
        raise ValueError(f"unknown mechanism {raw!r}")
    name, rest = match.group(1).lower(), match.group(2)
    if rest and rest[0] not in ":/":
        raise ValueError(f"unknown mechanism {raw!r}")
    if name == "all":
        if rest:
            raise ValueError(f"{raw!r}: 'all' takes no argument")
        return Term(qualifier, name, None)
    arg = rest[1:] if rest.startswith(":") else rest
    if name in CIDR_MAX:
        return Term(qualifier, name, _network(name, arg, raw))
    spec, c4, c6 = _RE_DUAL_CIDR.match(arg).groups()
    if name in _NO_CIDR and (c4 or c6):
        raise ValueError(f"{raw!r}: no CIDR length allowed")
    cidr4 = _cidr_length(c4, CIDR_MAX["ip4"], raw)
    cidr6 = _cidr_length(c6, CIDR_MAX["ip6"], raw)
    if name not in _OPTIONAL_DOMAIN or rest.startswith(":"):
        _check_domain_spec(spec, raw)
    elif spec:
        raise ValueError(f"{raw!r}: {spec!r} is not a CIDR length")
    return Term(qualifier, name, spec or None, cidr4, cidr6)


def _cidr_length(digits: str | None, maximum: int, raw: str) -> int | None:
    """RFC 7208 ip4-cidr-length / ip6-cidr-length: "0" or a number without a leading zero, up to ``maximum``."""
    if digits is None:
        return None
    if (digits != "0" and digits.startswith("0")) or int(digits) > maximum:
        raise ValueError(f"{raw!r}: CIDR length out of range")
    return int(digits)


def _network(name: str, arg: str, raw: str) -> str:
    """ip4-network / ip6-network with at most a single CIDR length (the dual form belongs to a and mx)."""
    match = _RE_NETWORK.match(arg)
    address_type = ipaddress.IPv4Address if name == "ip4" else ipaddress.IPv6Address
    try:
        if not match or "%" in arg:  # "%" would be an IPv6 scope, which no SPF network has
            raise ValueError(arg)
        address_type(match.group(1))
    except ValueError:
        raise ValueError(f"{raw!r}: not an {name} network") from None
    _cidr_length(match.group(2), CIDR_MAX[name], raw)
    return arg


def _check_macro_string(text: str, term: str) -> None:
    """macro-string: every "%" starts a macro-expand (7.1); the rest is visible ASCII, checked for the record."""
    if "%" in _RE_MACRO.sub("", text):
        raise ValueError(f"{term}: invalid macro")


def _check_domain_spec(spec: str, term: str) -> None:
    """domain-spec = macro-string domain-end; domain-end = "." toplabel ["."] / macro-expand."""
    if not spec:
        raise ValueError(f"{term}: a domain is required")
    _check_macro_string(spec, term)
    macros = list(_RE_MACRO.finditer(spec))
    if macros and macros[-1].end() == len(spec):
        return
    if macros:
        tail = spec[macros[-1].end() :]
        tail = tail[:-1] if tail.endswith(".") else tail
        if "." not in tail or not _RE_TOPLABEL.match(tail.rsplit(".", 1)[1]):
            raise ValueError(f"{term}: {spec!r} does not end in a macro or a valid top-level label")
        return
    labels = spec[:-1].split(".") if spec.endswith(".") else spec.split(".")
    if len(labels) < 2 or any(not 0 < len(label) < 64 for label in labels) or not _RE_TOPLABEL.match(labels[-1]):
        raise ValueError(f"{term}: {spec!r} is not a domain name")
