# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: SPF (RFC 7208) record lookup, a static walk for limits, and evaluation via pyspf.

Two jobs, two tools. The walk visits every include and redirect once, whatever the client IP, and counts the
DNS-querying terms and void lookups a receiver could hit: that is what a domain owner must keep under the limits.
The evaluation answers "does this relay IP pass?"; it is pyspf's (the reference implementation the RFC test suite
comes from, kept by one of the RFC's authors), asked through our resolver so that nameservers, timeouts and the
per-run cache apply to it too. pyspf's documented seam for that is its module-level ``DNSLookup`` function (its own
test driver replaces it); ours dispatches per thread and falls back to pyspf's own when no resolver is set.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._dns import Resolver
from ansible_collections.smtp.relay.plugins.module_utils._optional import OptionalLibrary
from ansible_collections.smtp.relay.plugins.module_utils._sender.names import is_under
from ansible_collections.smtp.relay.plugins.module_utils._sender.spf_record import Term, parse_record, spf_records

try:
    import spf as _pyspf
except ImportError:  # pragma: no cover - depends on the host
    _pyspf = None
    PYSPF = OptionalLibrary.missing("pyspf", "python3-spf")
else:
    PYSPF = OptionalLibrary.found("pyspf", "python3-spf")

MAX_LOOKUPS = 10
MAX_VOID_LOOKUPS = 2
MAX_MX_NAMES = 10
# A walk over a looping or absurd tree stops here; the count is then reported as "more than".
WALK_CAP = 40

LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")


@dataclass
class SpfWalk:
    """What a static walk from one domain found: its record, the limits used, and the names reached."""

    domain: str
    status: str = "none"  # ok | none | multiple | syntax | unknown
    record: str | None = None
    detail: str | None = None
    problems: list[str] = field(default_factory=list)
    lookups: int = 0
    void_lookups: int = 0
    void_names: list[str] = field(default_factory=list)
    includes: list[str] = field(default_factory=list)
    unanswered: list[str] = field(default_factory=list)
    macro_terms: int = 0
    capped: bool = False

    @property
    def sends_no_mail(self) -> bool:
        return self.status == "ok" and self.record is not None and self.record.lower().split() == ["v=spf1", "-all"]


def fetch_record(resolver: Resolver, domain: str) -> tuple[str, str | None, str | None]:
    """(status, record, detail) for a domain: ok, none, multiple or unknown."""
    answer = resolver.query(domain, "TXT")
    if not answer.answered:
        return "unknown", None, f"TXT query for {domain} got no answer ({answer.status})"
    records = spf_records(answer.texts())
    if not records:
        return "none", None, "no SPF record" + (" (the name does not exist)" if answer.status == "nxdomain" else "")
    if len(records) > 1:
        return "multiple", None, f"{len(records)} SPF records at {domain}: a permerror for every receiver"
    return "ok", records[0], None


def walk(resolver: Resolver, domain: str) -> SpfWalk:
    """Follow every include and redirect from ``domain`` once, counting lookups and void lookups."""
    result = SpfWalk(domain)
    status, record, detail = fetch_record(resolver, domain)
    result.status, result.record, result.detail = status, record, detail
    if status == "unknown":
        result.unanswered.append(domain)
    if status != "ok":
        return result
    try:
        parsed = parse_record(record)
    except ValueError as exc:
        result.status, result.detail = "syntax", str(exc)
        return result
    _walk_terms(resolver, domain, parsed, result, (domain,))
    return result


def _void(result: SpfWalk, name: str) -> None:
    result.void_lookups += 1
    result.void_names.append(name)


def _walk_terms(resolver: Resolver, domain: str, parsed: tuple[list[Term], dict], result: SpfWalk, path: tuple) -> None:
    terms, modifiers = parsed
    for term in terms:
        if term.name not in LOOKUP_TERMS:
            continue
        result.lookups += 1
        if result.lookups > WALK_CAP:
            result.capped = True
            return
        if term.has_macro:
            # Depends on the client or sender: counted, but cannot be followed without one.
            result.macro_terms += 1
            continue
        target = (term.value or domain).rstrip(".").lower()
        if term.name == "include":
            _follow(resolver, target, "include", result, path)
        elif term.name == "a":
            _address_lookup(resolver, target, result)
        elif term.name == "mx":
            _mx_lookup(resolver, target, result)
        elif term.name == "exists":
            answer = resolver.query(target, "A")
            if not answer.answered:
                result.unanswered.append(target)
            elif answer.empty:
                _void(result, target)
    redirect = modifiers.get("redirect")
    if redirect and not any(t.name == "all" for t in terms):
        result.lookups += 1
        if "%" in redirect:
            result.macro_terms += 1
        else:
            _follow(resolver, redirect.rstrip(".").lower(), "redirect", result, path)


def _follow(resolver: Resolver, target: str, how: str, result: SpfWalk, path: tuple) -> None:
    if target in path:
        result.problems.append(f"{how}:{target} loops back to itself")
        return
    result.includes.append(target)
    status, record, detail = fetch_record(resolver, target)
    if status == "unknown":
        result.unanswered.append(target)
        return
    if status == "none":
        _void(result, target)
        result.problems.append(f"{how}:{target} has no SPF record (permerror)")
        return
    if status == "multiple":
        result.problems.append(f"{how}:{target}: {detail}")
        return
    try:
        parsed = parse_record(record)
    except ValueError as exc:
        result.problems.append(f"{target}: {exc}")
        return
    _walk_terms(resolver, target, parsed, result, (*path, target))


def _address_lookup(resolver: Resolver, name: str, result: SpfWalk) -> None:
    ips, answers = resolver.addresses(name)
    if not all(a.answered for a in answers):
        result.unanswered.append(name)
    elif not ips:
        _void(result, name)


def _mx_lookup(resolver: Resolver, name: str, result: SpfWalk) -> None:
    answer = resolver.query(name, "MX")
    if not answer.answered:
        result.unanswered.append(name)
        return
    if answer.empty:
        _void(result, name)
        return
    if len(answer.records) > MAX_MX_NAMES:
        result.problems.append(f"mx:{name} has {len(answer.records)} MX names (limit {MAX_MX_NAMES}): permerror")
    for _unused, exchange in sorted(answer.records)[:MAX_MX_NAMES]:
        if exchange and exchange != ".":
            _address_lookup(resolver, exchange, result)


def provider_included(walked: SpfWalk, provider_include: str) -> bool:
    return any(is_under(n, provider_include) for n in walked.includes)


# --- evaluation through pyspf -------------------------------------------------------------------------------

_current = threading.local()
_original_lookup = None


def _lookup(name, qtype, strict=True, timeout=None):
    resolver = getattr(_current, "resolver", None)
    if resolver is None:
        return _original_lookup(name, qtype, strict, timeout)
    answer = resolver.query(name, qtype)
    if answer.status in ("timeout", "error"):
        raise _pyspf.TempError(f"DNS {answer.status} asking {qtype} of {name}")
    return [((name, qtype), value) for value in answer.records]


def _install() -> None:
    global _original_lookup  # noqa: PLW0603 - pyspf's seam is a module global; set it exactly once
    if PYSPF.available and _pyspf.DNSLookup is not _lookup:
        _original_lookup = _pyspf.DNSLookup
        _pyspf.DNSLookup = _lookup


_install()


@contextmanager
def using(resolver: Resolver):
    """Route this thread's pyspf lookups through ``resolver``."""
    previous = getattr(_current, "resolver", None)
    _current.resolver = resolver
    try:
        yield
    finally:
        _current.resolver = previous


def evaluate(resolver: Resolver, ip: str, sender: str, helo: str) -> tuple[str, str]:
    """check_host() for one client IP and envelope sender: (result, explanation), results as in RFC 7208 2.6."""
    PYSPF.require("to evaluate SPF")
    with using(resolver):
        query = _pyspf.query(i=ip, s=sender, h=helo, strict=True, timeout=resolver.timeout)
        result, _unused, explanation = query.check()
    return result, explanation
