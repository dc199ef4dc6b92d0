# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the checks over an allowlist request: address usability, the forward-confirmed
FQDN and reverse DNS (through the one resolver seam, ``_dns.Resolver``), and the update evidence.

A DNS question nobody answered (timeout, SERVFAIL) makes a check ``unknown``; no such name and no data are
definite answers.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.model import problem_check
from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP, UNKNOWN, WARN, check
from ansible_collections.smtp.relay.plugins.module_utils._dns import normalize_name


def unanswered(answers) -> str | None:
    """Why DNS gave no answer either way to some of ``answers``, or None when every answer is definite."""
    reasons = [f"{a.name} {a.rdtype}: {a.error or a.status}" for a in answers if not a.answered]
    return "; ".join(reasons) or None


def _is_address(item) -> bool:
    return isinstance(item, (ipaddress.IPv4Address, ipaddress.IPv6Address))


def address_checks(item, relay_public, checks) -> None:
    field = f"ipv{item.version}"
    probe = item if _is_address(item) else item.network_address
    refused = problem_check(item, field)
    if refused:
        checks.append(refused)
    elif not probe.is_global and relay_public is not False:
        status = FAIL if relay_public else WARN
        checks.append(check("address.not_global", status,
                            f"{item} is not a public address but the relay is "
                            + ("public" if relay_public else "not known to be private")
                            + ": the server is probably behind NAT",
                            "address", "ask the network owners for the egress (NAT) address and give it as egress",
                            field=field, address=str(item)))  # fmt: skip
    else:
        checks.append(check("address.ok", PASS, f"{item} is usable", "address", field=field, address=str(item)))


def _forward(fqdn, resolver, checks) -> list | None:
    """The FQDN's addresses (A, then AAAA), or None when DNS did not answer."""
    addresses, answers = resolver.addresses(fqdn)
    reason = unanswered(answers)
    if reason:
        checks.append(check("fqdn.lookup_failed", UNKNOWN, f"cannot resolve {fqdn}: {reason}", "dns", field="fqdn"))
        return None
    if not addresses:
        checks.append(check("fqdn.unresolved", FAIL, f"{fqdn} does not resolve (no A or AAAA record)", "dns",
                            "publish A/AAAA records for the server's egress addresses", field="fqdn"))  # fmt: skip
    return [ipaddress.ip_address(a) for a in addresses]


def _confirms(forward, item) -> bool:
    """An address is confirmed when the FQDN resolves to it, a network when the FQDN resolves into it."""
    if _is_address(item):
        return item in forward
    return any(a in item for a in forward if a.version == item.version)


def _forward_check(fqdn, item, forward, field) -> dict:
    if _confirms(forward, item):
        return check("fqdn.forward_confirmed", PASS, f"{fqdn} resolves to {item}", "dns", field=field,
                     address=str(item))  # fmt: skip
    shown = ", ".join(str(a) for a in forward)
    return check("fqdn.forward_mismatch", FAIL, f"{fqdn} resolves to {shown}, not to {item}", "dns",
                 "fix the A/AAAA records or the address given", field=field, address=str(item))  # fmt: skip


def _reverse_check(fqdn, item, resolver, field) -> dict:
    answer = resolver.names(str(item))
    if not answer.answered:
        return check("rdns.lookup_failed", UNKNOWN, f"cannot look up the name of {item}: {unanswered([answer])}",
                     "dns", field=field, address=str(item))  # fmt: skip
    names = list(dict.fromkeys(normalize_name(name) for name in answer.records))
    if fqdn in names:
        return check("rdns.match", PASS, f"{item} points back to {fqdn}", "dns", field=field, address=str(item))
    if not names:
        return check("rdns.missing", WARN, f"{item} has no reverse (PTR) name", "dns",
                     f"ask the address owner for a PTR record {fqdn}", field=field, address=str(item))  # fmt: skip
    return check("rdns.mismatch", WARN, f"{item} points back to {', '.join(names)}, not to {fqdn}", "dns",
                 f"ask the address owner to set the PTR record to {fqdn}", field=field,
                 address=str(item))  # fmt: skip


def _shared_check(check_id: str, fqdn, item, field) -> dict:
    """A platform's shared egress range belongs to the platform: the app's name neither resolves into it nor do its
    reverse names name the app. Said once per range, so that the request shows why the check does not apply."""
    what = f"{fqdn} does not resolve to it" if check_id.startswith("fqdn.") else f"its reverse name is not {fqdn}"
    return check(check_id, SKIP, f"{item} is the platform's shared egress (shared_egress): {what}, as expected",
                 "dns", field=field, address=str(item))  # fmt: skip


def dns_checks(fqdn, addresses, resolver, checks, shared: bool = False) -> None:
    """Forward-confirmed FQDN for every address and network; reverse DNS for every address (not for networks).

    With ``shared`` (the addresses are a platform's shared egress) the FQDN must still resolve, but a mismatch with
    the ranges and their reverse names are expected: skipped, saying why, instead of failed.
    """
    forward = _forward(fqdn, resolver, checks)
    for item in addresses:
        field = f"ipv{item.version}"
        if forward and shared and not _confirms(forward, item):
            checks.append(_shared_check("fqdn.shared_egress", fqdn, item, field))
        elif forward:
            checks.append(_forward_check(fqdn, item, forward, field))
        if _is_address(item):
            reverse = _shared_check("rdns.shared_egress", fqdn, item, field) if shared else None
            checks.append(reverse or _reverse_check(fqdn, item, resolver, field))


def evidence(opts, host, checks) -> dict:
    """The update evidence fields of the request, read from the host and checked."""
    updates = host.automatic_updates()
    status = {"enabled": PASS, "disabled": WARN}.get(updates, UNKNOWN)
    checks.append(check("updates.automatic", status, f"automatic security updates: {updates}", "evidence",
                        "install and enable unattended-upgrades" if updates == "disabled" else None,
                        field="automatic_updates"))  # fmt: skip
    updated = host.package_lists_updated()
    if updated is None:
        checks.append(check("updates.package_lists_age", UNKNOWN, "cannot tell when the package lists were updated",
                            "evidence", field="package_lists_updated"))  # fmt: skip
        return {"automatic_updates": updates, "package_lists_updated": None}
    age = (host.now() - updated).days
    limit = opts["max_package_list_age"]
    checks.append(check("updates.package_lists_age", PASS if age <= limit else WARN,
                        f"package lists updated {age} day(s) ago (limit {limit})", "evidence",
                        None if age <= limit else "run apt-get update regularly (apt-daily.timer)",
                        field="package_lists_updated", age_days=age))  # fmt: skip
    # A date, not a time: the request changes when the lists are refreshed on a new day, not on every run.
    return {"automatic_updates": updates, "package_lists_updated": updated.date().isoformat()}
