# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: how the host's Postfix will reach its relay, so that the probe does the same.

- TLS: the relay's entry in smtp_tls_policy_maps, when there is one, over main.cf's TLS settings (level, expected
  names or pinned fingerprints, SNI, oldest protocol). The entry's grammar is ``_rules``'s, the table is read by
  ``_postfix.info``.
- Addresses: smtp_host_lookup. ``dns`` asks DNS only (Postfix does not read /etc/hosts then), ``native`` the system
  resolver, ``dns, native`` DNS first. All through the one resolver seam (``_dns``).
"""

from __future__ import annotations

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._dns import (
    DNSPYTHON,
    Answer,
    DnspythonBackend,
    Resolver,
    SystemBackend,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.settings import Settings
from ansible_collections.smtp.relay.plugins.module_utils._rules import (
    VERIFYING_LEVELS,
    min_tls_version,
    parse_policy,
    policy_for,
)

DIGESTS = ("sha256", "sha1", "md5")


def relay_tls(s: Settings, policies: dict | None, token: str) -> dict:
    """What Postfix will ask of the relay's TLS: level, cert_match, fingerprints (digest), servername, min_version,
    and ``source`` (the policy entry, or "" when main.cf decides)."""
    text = policy_for(policies, token) if policies else None
    entry = parse_policy(text) if text else None
    level = entry["level"] if entry else s.tls_level()
    match_param = "smtp_tls_secure_cert_match" if level == "secure" else "smtp_tls_verify_cert_match"
    if level in VERIFYING_LEVELS:
        cert_match = tuple(entry["match"]) if entry and entry["match"] else tuple(s.words(match_param))
    else:
        cert_match = ("hostname",)
    fingerprints = ()
    if level == "fingerprint":
        fingerprints = tuple(entry["match"]) if entry else tuple(s.words("smtp_tls_fingerprint_cert_match"))
    protocols_param = "smtp_tls_protocols" if level == "may" else "smtp_tls_mandatory_protocols"
    protocols = entry["protocols"] if entry and entry["protocols"] else s.words(protocols_param)
    digest = s.get("smtp_tls_fingerprint_digest").lower() or "sha256"
    return {
        "level": level,
        "cert_match": cert_match,
        "fingerprints": tuple(f.replace(":", "").lower() for f in fingerprints),
        "digest": digest if digest in DIGESTS else "sha256",
        "servername": (entry["servername"] if entry else "") or s.get("smtp_tls_servername"),
        "min_version": min_tls_version(protocols),
        "source": f"smtp_tls_policy_maps: {token} = {text}" if entry else "",
        "policy_names": bool(entry and entry["match"] and level in VERIFYING_LEVELS),
    }


def host_lookup(s: Settings) -> tuple[str, ...]:
    """smtp_host_lookup's words (Postfix's default: dns)."""
    return tuple(w for w in s.words("smtp_host_lookup") if w in ("dns", "native")) or ("dns",)


class _DnsThenNative:
    """``dns, native``: DNS first; the system resolver when DNS gives no address."""

    def __init__(self, first, second):
        self.first, self.second = first, second

    def lookup(self, name: str, rdtype: str, timeout: float) -> Answer:
        answer = self.first.lookup(name, rdtype, timeout)
        return answer if answer.records or rdtype not in ("A", "AAAA") else self.second.lookup(name, rdtype, timeout)


def lookup_resolvers(lookup: tuple, nameservers, timeout: float) -> tuple:
    """(the probe's resolver, a resolver to explain a failed lookup or None) for smtp_host_lookup ``lookup``.

    Given nameservers are asked for everything, whatever smtp_host_lookup says. With ``dns`` alone the second
    resolver is the system's: when DNS has no address for the relay and the system resolver (/etc/hosts) has one,
    that is what Postfix will run into. Asking DNS alone needs dnspython on the host: without it the system resolver
    answers, as before smtp_host_lookup was honoured (a probe that cannot tell must not fail every host).
    """
    if nameservers:
        return _dns.make_resolver(nameservers, timeout=timeout), None
    if lookup == ("native",) or not DNSPYTHON.available:
        return _dns.make_resolver(timeout=timeout, system=True), None
    if "native" in lookup:
        return Resolver(_DnsThenNative(DnspythonBackend(), SystemBackend()), timeout), None
    return Resolver(DnspythonBackend(), timeout), _dns.make_resolver(timeout=timeout, system=True)
