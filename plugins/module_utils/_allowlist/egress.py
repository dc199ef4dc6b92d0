# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: where a server's mail leaves from: the relay's addresses and the egress addresses.

The relay's addresses come from DNS (its MX hosts when Postfix would look them up); the egress addresses are the
source addresses the kernel picks towards them, bound as Postfix's smtp_bind_address(6) and inet_protocols say.
Finding them sends no traffic.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.checks import unanswered
from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP, UNKNOWN, WARN, check
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.host import ROUTE_PROBE, parse_inet_protocols


def mx_hosts(answer) -> list[str]:
    """The exchanges of an MX answer, most preferred first; a null MX (".") names none."""
    names = (_dns.normalize_name(exchange) for _preference, exchange in sorted(answer.records))
    return [name for name in names if name]


MX_EXCHANGES = 5


def _relay_lookup(relay, resolver) -> tuple[list[str], str | None]:
    """The addresses Postfix would connect to for one relay name, or why DNS gave no answer either way."""
    names = [relay["host"]]
    # Without dnspython the host's resolver cannot read MX records: the name's own addresses stand in, as they
    # do for a domain without MX.
    if relay["mx_lookup"] and _dns.DNSPYTHON.available:
        answer = resolver.query(relay["host"], "MX")
        if not answer.answered:
            return [], unanswered([answer])
        # Postfix tries a handful of exchanges (smtp_mx_address_limit, 5 addresses by default); a domain that lists
        # hundreds would otherwise cost two questions each.
        names = mx_hosts(answer)[:MX_EXCHANGES] or names
    found = []
    for name in names:
        addresses, answers = resolver.addresses(name)
        reason = unanswered(answers)
        if reason:
            return [], reason
        found += addresses
    return found, None


def relay_addresses(relays, resolver, checks) -> list:
    """[(address, port)] of the relays, in order, each once."""
    addresses = []
    for relay in relays:
        if relay["is_ip"]:
            found = [relay["host"]]
        else:
            found, reason = _relay_lookup(relay, resolver)
            if reason:
                checks.append(check("relay.lookup_failed", UNKNOWN, f"cannot resolve the relay: {reason}", "dns",
                                    field="relay_host"))  # fmt: skip
                continue
            if not found:
                checks.append(check("relay.unresolved", WARN, f"relay {relay['host']} has no address",
                                    "dns", "check relay_host and nameservers", field="relay_host"))  # fmt: skip
        addresses += [(ipaddress.ip_address(a), relay["port"]) for a in found]
    return list(dict.fromkeys(addresses))


def detect_egress(version, relay_addresses, *, relay_known, postfix, host, checks) -> list:
    """Source addresses the kernel would pick towards the relay, as Postfix would bind them."""
    field = f"ipv{version}"
    if postfix is not None and version not in parse_inet_protocols(postfix.get("inet_protocols")):
        checks.append(check("egress.protocol_disabled", SKIP, f"Postfix inet_protocols excludes IPv{version}",
                            "egress", field=field))  # fmt: skip
        return []
    targets = [(str(a), port) for a, port in relay_addresses if a.version == version]
    if not relay_known:
        targets = [(ROUTE_PROBE[version], 25)]
    elif not targets:
        checks.append(check("egress.no_relay_address", SKIP, f"the relay has no IPv{version} address", "egress",
                            field=field))  # fmt: skip
    bind_setting = "smtp_bind_address" + ("6" if version == 6 else "")
    bind = (postfix or {}).get(bind_setting) or None
    found = []
    for target, port in targets:
        try:
            source = host.source_address(target, port, bind)
        except OSError as e:
            checks.append(check("egress.bind_unavailable", FAIL,
                                f"Postfix {bind_setting} = {bind} cannot be used on this host: {e.strerror or e}",
                                "egress", f"fix {bind_setting} or give {field} explicitly", field=field))  # fmt: skip
            return []
        if source is None:
            checks.append(check("egress.no_route", SKIP, f"no IPv{version} route towards {target}", "egress",
                                field=field))  # fmt: skip
        elif ipaddress.ip_address(source) not in found:
            found.append(ipaddress.ip_address(source))
            towards = target if relay_known else "the default route"
            via = f" (bound by {bind_setting})" if bind else ""
            checks.append(check("egress.detected", PASS, f"IPv{version} egress towards {towards} is {source}{via}",
                                "egress", field=field, address=source))  # fmt: skip
    return found
