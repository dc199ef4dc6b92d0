# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: allowlist requests (model, input rules, checks, renderers, file output)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import stat

from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    PASS,
    SKIP,
    UNKNOWN,
    WARN,
    bool_option,
    check,
    csv_row,
    describe,
    fail_on_option,
    int_option,
    is_sound,
    number_option,
    shown,
    verdict,
    with_status,
)
from ansible_collections.smtp.relay.plugins.module_utils._dns import DNSPYTHON, dns, nameserver_addresses
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._files import write_atomically
from ansible_collections.smtp.relay.plugins.module_utils._postfix.host import ROUTE_PROBE, parse_inet_protocols
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    RelayhostError,
    ip_address,
    is_hostname,
    parse_relayhost,
)

FORMATS = ("mail", "markdown", "json", "yaml", "csv")
DEFAULT_SUBJECT = "Email sending: allowlist server"
DEFAULT_MAX_PACKAGE_LIST_AGE = 7
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT = 300.0
MAX_PACKAGE_LIST_AGE = 3650
DEFAULT_FAIL_ON = (FAIL,)
# A request names hosts, not networks of the Internet: the shortest prefixes a request may hold (256 IPv4
# addresses, one IPv6 site). Documented in the module.
MIN_PREFIX = {4: 24, 6: 48}
_IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
# Checks that refuse the request outright, whatever report_only and fail_on say: a request holding such an
# address would admit the world, or nothing a relay ever sees, and must never be written or sent.
REFUSING_CHECKS = ("address.unusable", "address.too_broad")

# The order relay owners' forms ask in; renderers and the fleet files keep it.
FIELDS = (
    ("fqdn", "FQDN"),
    ("purpose", "Purpose"),
    ("ipv4", "IPv4 address"),
    ("ipv6", "IPv6 address"),
    ("team", "Owning team"),
    ("contact", "Contact"),
    ("relay", "Relay"),
    ("monitoring", "Monitoring"),
    ("automatic_updates", "Automatic security updates"),
    ("package_lists_updated", "Package lists updated"),
)
FIELD_NAMES = tuple(name for name, _label in FIELDS)
# Shown in people-facing renderings only when set; the form fields above them always are.
OPTIONAL_FIELDS = frozenset({"relay", "monitoring", "automatic_updates", "package_lists_updated"})
TEXT_LIMITS = {"purpose": 500, "team": 200, "contact": 200, "monitoring": 500, "subject": 200}

_MAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9.-]+)$")
# A named channel: `#ops`, `slack:#ops-mail`, `matrix:#ops:example.org`.
_CHANNEL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?#[A-Za-z0-9][A-Za-z0-9_.:-]*$")


class LookupFailed(Exception):
    """DNS gave no answer either way (timeout, SERVFAIL): the check is unknown, not failed."""


# ---------------------------------------------------------------------------------------------
# DNS seams: forward(name) -> [ip], reverse(ip) -> [name], mx(name) -> [name] | None (unsupported)


def _clean_name(name: str) -> str:
    return name.rstrip(".").lower()


class SocketResolver:
    """The host's own resolver (nsswitch: /etc/hosts first, then DNS)."""

    def forward(self, name: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except socket.gaierror as e:
            if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
                return []
            raise LookupFailed(f"{name}: {e.strerror}") from e
        return list(dict.fromkeys(str(ipaddress.ip_address(i[4][0].split("%", 1)[0])) for i in infos))

    def reverse(self, address: str) -> list[str]:
        try:
            name, aliases, _addrs = socket.gethostbyaddr(address)
        except socket.herror:
            return []
        except OSError as e:
            raise LookupFailed(f"{address}: {e}") from e
        return list(dict.fromkeys(_clean_name(n) for n in [name, *aliases]))

    def mx(self, name: str):
        return None


class DnspythonResolver:
    """Given name servers (and port), through dnspython: the DNS view, without /etc/hosts."""

    def __init__(self, nameservers, port: int = 53, timeout: float = 5.0):
        DNSPYTHON.require("to query the DNS servers given in nameservers")
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = list(nameservers)
        self.resolver.port = port
        self.resolver.timeout = timeout
        self.resolver.lifetime = timeout

    def _query(self, name, rdtype):
        try:
            return list(self.resolver.resolve(name, rdtype, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.DNSException as e:
            raise LookupFailed(f"{name} {rdtype}: {e}") from e

    def forward(self, name: str) -> list[str]:
        return [r.address for rdtype in ("A", "AAAA") for r in self._query(name, rdtype)]

    def reverse(self, address: str) -> list[str]:
        return [_clean_name(r.target.to_text()) for r in self._query(dns.reversename.from_address(address), "PTR")]

    def mx(self, name: str):
        records = sorted(self._query(name, "MX"), key=lambda r: (r.preference, r.exchange.to_text()))
        return [_clean_name(r.exchange.to_text()) for r in records if r.exchange.to_text() != "."]


def make_resolver(nameservers=None, port: int = 53, timeout: float = 5.0):
    if nameservers:
        return DnspythonResolver(nameservers, port, timeout)
    return SocketResolver()


# ---------------------------------------------------------------------------------------------
# Input rules: refuse bad input before anything is looked up, naming the field and what is accepted.


def _refuse(field: str, value, accepted: str, **details) -> SmtpRelayError:
    return SmtpRelayError(f"{field} {shown(value)} is not valid: {accepted}", field=field, **details)


def validate_text(field: str, value, required: bool = True):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise SmtpRelayError(f"{field} is required and must not be empty", field=field)
        return None
    if not isinstance(value, str):
        raise _refuse(field, value, "expected text")
    value = value.strip()
    if not value.isprintable():
        raise _refuse(field, value, "expected one line of printable text (no newline, tab or control character)")
    if len(value) > TEXT_LIMITS[field]:
        raise _refuse(field, value, f"expected at most {TEXT_LIMITS[field]} characters")
    return value


def fqdn_problem(name: str) -> str | None:
    """Why ``name`` is not a usable fully qualified host name, or None."""
    if ip_address(name) is not None:
        return "it is an IP address, not a name"
    if not is_hostname(name):
        return "expected labels of letters, digits and hyphens separated by dots, like host.example.org"
    if "." not in name.rstrip("."):
        return "it is not qualified: expected the full name with its domain, like host.example.org"
    return None


def validate_fqdn(value):
    if value is None:
        return None
    if not isinstance(value, str):
        raise _refuse("fqdn", value, "expected a host name")
    value = value.strip()
    if not value.isprintable():
        # Checked first: the label pattern's "$" would let a newline before a dot through.
        raise _refuse("fqdn", value, "expected one line without control or line-separator characters")
    problem = fqdn_problem(value)
    if problem:
        raise _refuse("fqdn", value, problem)
    return _clean_name(value)


def validate_contact(value) -> str:
    value = validate_text("contact", value)
    mail = _MAIL.match(value)
    if mail and is_hostname(mail.group(1)) and "." in mail.group(1):
        return value
    if _CHANNEL.match(value):
        return value
    raise _refuse(
        "contact",
        value,
        "expected a mail address (team@example.org) or a named chat channel (#mail-ops, slack:#mail-ops)",
    )


def _network(field: str, text, versions=(4, 6)):
    """An address or a network (published egress range), normalised; /32 and /128 become addresses."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True) if isinstance(text, str) else None
    except ValueError:
        net = None
    if net is None or net.version not in versions:
        family = " or ".join(f"IPv{v}" for v in versions)
        raise _refuse(field, text, f"expected an {family} address or network (CIDR, host bits zero)")
    return net.network_address if net.num_addresses == 1 else net


def address_problem(item) -> tuple[str, str] | None:
    """(check id, why) when an address or network must never be in a request, else None.

    The one rule for given and detected addresses and for fleet renderings: networks shorter than MIN_PREFIX,
    unspecified, loopback, link-local and multicast addresses, and any of them in IPv4-mapped IPv6 form.
    """
    net = ipaddress.ip_network(item)
    note = ""
    if net.version == 6 and net.overlaps(_IPV4_MAPPED):
        if not net.subnet_of(_IPV4_MAPPED):
            return "address.too_broad", "it holds IPv4-mapped addresses, that is all of IPv4"
        mapped = ipaddress.ip_network((net.network_address.ipv4_mapped, net.prefixlen - 96))
        note = f" (the IPv4-mapped form of {mapped.network_address if mapped.num_addresses == 1 else mapped})"
        net = mapped
    if net.prefixlen < MIN_PREFIX[net.version]:
        return "address.too_broad", (
            f"a network of {net.num_addresses} addresses{note}: a request names hosts, so at most "
            f"/{MIN_PREFIX[4]} for IPv4 and /{MIN_PREFIX[6]} for IPv6"
        )
    ends = (net.network_address, net.broadcast_address)
    kinds = [
        ("unspecified", net.network_address.is_unspecified),
        ("loopback", any(a.is_loopback for a in ends)),
        ("link-local", any(a.is_link_local for a in ends)),
        ("multicast", any(a.is_multicast for a in ends)),
    ]
    bad = next((kind for kind, flag in kinds if flag), None)
    if bad:
        return "address.unusable", f"a {bad} address{note}: a relay never sees it"
    if note:
        return "address.unusable", f"an IPv4 address in IPv6 form{note}: give it under ipv4"
    return None


def _problem_check(item, field: str):
    problem = address_problem(item)
    if problem is None:
        return None
    check_id, why = problem
    return check(check_id, FAIL, f"{item} is {why}", "address", "give the addresses the server sends from",
                 field=field, address=str(item))  # fmt: skip


def validate_addresses(params) -> dict[int, list]:
    """Explicit addresses per family: ipv4, ipv6 and the mixed egress list, in the order given."""
    result = {4: [], 6: []}
    for field, versions in (("ipv4", (4,)), ("ipv6", (6,)), ("egress", (4, 6))):
        values = params.get(field)
        if values is not None and not isinstance(values, list | tuple):
            raise _refuse(field, values, "expected a list of addresses or networks")
        for text in values or []:
            item = _network(field, text, versions)
            refused = _problem_check(item, field)
            if refused:
                raise _refuse(field, text, refused["message"], checks=[refused], valid=False, verdict=FAIL)
            if item not in result[item.version]:
                result[item.version].append(item)
    return result


def validate_relay(value) -> list[dict]:
    """A host name, a bare IP address or a Postfix relayhost string -> [{host, port, mx_lookup, is_ip}]."""
    if value is None or not str(value).strip():
        return []
    value = str(value).strip()
    address = ip_address(value)
    if address is not None:
        return [{"host": str(address), "port": 25, "mx_lookup": False, "is_ip": True}]
    try:
        relays = parse_relayhost(value)
    except RelayhostError as e:
        raise SmtpRelayError(f"relay_host: {e.msg}", field="relay_host") from e
    if len(relays) == 1 and relays[0]["host"] == value:
        # A bare name means that host, not its MX: Postfix's MX rule applies to relayhost strings with a port.
        relays[0]["mx_lookup"] = False
    return relays


def validate_dest(value):
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise _refuse("dest", value, "expected the path of a file")
    return value


def validate_params(params) -> dict:
    """Checked, normalised copy of the module parameters: bad values are refused by name, never replaced by a
    default (only an option that was not given, None, takes its default)."""
    fmt = "mail" if params.get("format") is None else params["format"]
    if fmt not in FORMATS:
        raise _refuse("format", fmt, "expected one of " + ", ".join(FORMATS))
    relay_host = params.get("relay_host")
    if relay_host is not None and not isinstance(relay_host, str):
        raise _refuse("relay_host", relay_host, "expected a host name, an IP address or a Postfix relayhost")
    relay_public = params.get("relay_public")
    if relay_public is not None:
        relay_public = bool_option("relay_public", relay_public, default=False)
    report_only = bool_option("report_only", params.get("report_only"), default=False)
    return {
        "fqdn": validate_fqdn(params.get("fqdn")),
        "purpose": validate_text("purpose", params.get("purpose")),
        "team": validate_text("team", params.get("team")),
        "contact": validate_contact(params.get("contact")),
        "monitoring": validate_text("monitoring", params.get("monitoring"), required=False),
        "subject": validate_text("subject", DEFAULT_SUBJECT if params.get("subject") is None else params["subject"]),
        "addresses": validate_addresses(params),
        "egress_given": bool(params.get("egress")),
        "relay_host": relay_host.strip() if relay_host and relay_host.strip() else None,
        "relays": validate_relay(relay_host),
        "relay_public": relay_public,
        "prefer_ipv6": bool_option("prefer_ipv6", params.get("prefer_ipv6"), default=False),
        "format": fmt,
        "dest": validate_dest(params.get("dest")),
        "nameservers": nameserver_addresses(params.get("nameservers")),
        "dns_port": int_option("dns_port", params.get("dns_port"), default=53, minimum=1, maximum=65535),
        "timeout": number_option("timeout", params.get("timeout"), default=DEFAULT_TIMEOUT, maximum=MAX_TIMEOUT),
        "report_only": report_only,
        # report_only renders whatever the checks say: it is fail_on [] (and overrides it).
        "fail_on": () if report_only else fail_on_option(params.get("fail_on"), default=DEFAULT_FAIL_ON),
        "evidence": bool_option("evidence", params.get("evidence"), default=False),
        "max_package_list_age": int_option(
            "max_package_list_age",
            params.get("max_package_list_age"),
            default=DEFAULT_MAX_PACKAGE_LIST_AGE,
            minimum=0,
            maximum=MAX_PACKAGE_LIST_AGE,
        ),
    }


# ---------------------------------------------------------------------------------------------
# Gathering and checking


def _relay_addresses(relays, resolver, checks) -> list:
    addresses = []
    for relay in relays:
        if relay["is_ip"]:
            found = [relay["host"]]
        else:
            try:
                names = (resolver.mx(relay["host"]) if relay["mx_lookup"] else None) or [relay["host"]]
                found = [a for name in names for a in resolver.forward(name)]
            except LookupFailed as e:
                checks.append(check("relay.lookup_failed", UNKNOWN, f"cannot resolve the relay: {e}", "dns",
                                    field="relay_host"))  # fmt: skip
                continue
            if not found:
                checks.append(check("relay.unresolved", WARN, f"relay {relay['host']} has no address",
                                    "dns", "check relay_host and nameservers", field="relay_host"))  # fmt: skip
        addresses += [(ipaddress.ip_address(a), relay["port"]) for a in found]
    return list(dict.fromkeys(addresses))


def _detect_egress(version, relay_addresses, *, relay_known, postfix, host, checks) -> list:
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


def _is_address(item) -> bool:
    return isinstance(item, ipaddress.IPv4Address | ipaddress.IPv6Address)


def _address_checks(item, relay_public, checks) -> None:
    field = f"ipv{item.version}"
    probe = item if _is_address(item) else item.network_address
    refused = _problem_check(item, field)
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


def _dns_checks(fqdn, addresses, resolver, checks) -> None:
    try:
        forward = [ipaddress.ip_address(a) for a in resolver.forward(fqdn)]
    except LookupFailed as e:
        checks.append(check("fqdn.lookup_failed", UNKNOWN, f"cannot resolve {fqdn}: {e}", "dns", field="fqdn"))
        forward = None
    if forward == []:
        checks.append(check("fqdn.unresolved", FAIL, f"{fqdn} does not resolve (no A or AAAA record)", "dns",
                            "publish A/AAAA records for the server's egress addresses", field="fqdn"))  # fmt: skip
    for item in addresses:
        field = f"ipv{item.version}"
        if forward:
            if _is_address(item):
                confirmed = item in forward
            else:
                confirmed = any(a in item for a in forward if a.version == item.version)
            shown = ", ".join(str(a) for a in forward)
            if confirmed:
                checks.append(check("fqdn.forward_confirmed", PASS, f"{fqdn} resolves to {item}", "dns",
                                    field=field, address=str(item)))  # fmt: skip
            else:
                checks.append(check("fqdn.forward_mismatch", FAIL, f"{fqdn} resolves to {shown}, not to {item}",
                                    "dns", "fix the A/AAAA records or the address given", field=field,
                                    address=str(item)))  # fmt: skip
        if not _is_address(item):
            continue
        try:
            names = resolver.reverse(str(item))
        except LookupFailed as e:
            checks.append(check("rdns.lookup_failed", UNKNOWN, f"cannot look up the name of {item}: {e}", "dns",
                                field=field, address=str(item)))  # fmt: skip
            continue
        if fqdn in names:
            checks.append(check("rdns.match", PASS, f"{item} points back to {fqdn}", "dns", field=field,
                                address=str(item)))  # fmt: skip
        elif not names:
            checks.append(check("rdns.missing", WARN, f"{item} has no reverse (PTR) name", "dns",
                                f"ask the address owner for a PTR record {fqdn}", field=field,
                                address=str(item)))  # fmt: skip
        else:
            checks.append(check("rdns.mismatch", WARN, f"{item} points back to {', '.join(names)}, not to {fqdn}",
                                "dns", f"ask the address owner to set the PTR record to {fqdn}", field=field,
                                address=str(item)))  # fmt: skip


def _evidence(opts, host, checks) -> dict:
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


def gather(opts, host, resolver) -> tuple[dict, list]:
    """The request and its checks, taking from the host what was not given."""
    checks = []
    detecting = not opts["egress_given"] and not (opts["addresses"][4] and opts["addresses"][6])
    needs_postfix = not opts["relays"] or detecting
    postfix = host.postfix_settings() if needs_postfix else None
    relay_value = opts["relay_host"]
    relays = opts["relays"]
    if not relays and postfix and postfix.get("relayhost"):
        relay_value = postfix["relayhost"]
        relays = validate_relay(relay_value)
    relay_addresses = _relay_addresses(relays, resolver, checks)
    if not relays:
        checks.append(check("relay.unknown", WARN, "no relay_host given and Postfix has no relayhost: egress "
                            "addresses are those of the default route", "egress", "give relay_host",
                            field="relay_host"))  # fmt: skip
    relay_public = opts["relay_public"]
    if relay_public is None and relay_addresses:
        relay_public = any(a.is_global for a, _port in relay_addresses)

    addresses = {}
    for version in (4, 6):
        explicit = opts["addresses"][version]
        # A published egress list is the whole truth; ipv4 or ipv6 alone says nothing about the other family.
        if explicit or opts["egress_given"]:
            addresses[version] = explicit
            continue
        addresses[version] = _detect_egress(
            version, relay_addresses, relay_known=bool(relays), postfix=postfix, host=host, checks=checks
        )

    fqdn = opts["fqdn"]
    if fqdn is None:
        detected = host.fqdn()
        problem = fqdn_problem(detected)
        if problem:
            checks.append(check("fqdn.not_qualified", FAIL, f"the host calls itself {detected!r}: {problem}",
                                "input", "set the host name properly or give fqdn", field="fqdn"))  # fmt: skip
            fqdn = detected
        else:
            fqdn = _clean_name(detected)

    every = addresses[4] + addresses[6]
    if not every:
        checks.append(check("address.none", FAIL, "no egress address found", "address",
                            "give ipv4, ipv6 or egress", field="ipv4"))  # fmt: skip
    for item in every:
        _address_checks(item, relay_public, checks)
    if opts["prefer_ipv6"] and not addresses[6]:
        checks.append(check("ipv6.missing", WARN, "the relay prefers IPv6 but the server has no IPv6 egress",
                            "address", "give ipv6 if the server has one", field="ipv6"))  # fmt: skip
    if not any(c["id"] == "fqdn.not_qualified" for c in checks):
        _dns_checks(fqdn, every, resolver, checks)

    request = dict.fromkeys(FIELD_NAMES)
    request.update(
        fqdn=fqdn,
        purpose=opts["purpose"],
        ipv4=[str(a) for a in addresses[4]],
        ipv6=[str(a) for a in addresses[6]],
        team=opts["team"],
        contact=opts["contact"],
        relay=relay_value,
        monitoring=opts["monitoring"],
    )
    if opts["evidence"]:
        request.update(_evidence(opts, host, checks))
    return request, checks


# ---------------------------------------------------------------------------------------------
# Renderers: pure functions of the request, byte-stable (no timestamps, fixed field order).


def _value_text(value, separator=", ") -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return separator.join(str(v) for v in value)
    return str(value)


def _normalise(request) -> dict:
    if not isinstance(request, dict) or not request.get("fqdn"):
        raise SmtpRelayError(f"an allowlist request must be a dict with at least fqdn, got {shown(request)}",
                             field="request")  # fmt: skip
    row = {name: request.get(name) for name in FIELD_NAMES}
    for field, version in (("ipv4", 4), ("ipv6", 6)):
        values = row[field] if isinstance(row[field], list | tuple) else [row[field]] if row[field] else []
        for text in values:
            # Renderings (the fleet files too) never hold an address the module would refuse.
            try:
                item = _network(field, str(text), (version,))
            except SmtpRelayError as e:
                raise SmtpRelayError(f"allowlist request for {shown(row['fqdn'])}: {e.msg}", field=field) from None
            refused = address_problem(item)
            if refused:
                raise SmtpRelayError(
                    f"allowlist request for {shown(row['fqdn'])}: {field} {item} is {refused[1]}", field=field
                )
    return row


def _shown_fields(request):
    """People-facing renderings: every form field, optional ones only when set."""
    for name, label in FIELDS:
        value = request[name]
        if name in OPTIONAL_FIELDS and value in (None, "", []):
            continue
        yield name, label, value


def mail_body(request) -> str:
    request = _normalise(request)
    rows = [(label, _value_text(value) or "none") for _name, label, value in _shown_fields(request)]
    width = max(len(label) for label, _v in rows) + 1
    where = f"the relay {request['relay']}" if request["relay"] else "your relay"
    lines = [
        "Hello,",
        "",
        f"please allow the following server to send mail through {where}.",
        "",
        *(f"{label + ':':<{width}} {value}" for label, value in rows),
        "",
        f"Questions about this server go to {request['contact']}.",
        "",
        "Thank you,",
        request["team"] or "",
    ]
    return "\n".join(lines) + "\n"


def render_mail(request, subject: str = DEFAULT_SUBJECT) -> str:
    return f"Subject: {subject}\n\n{mail_body(request)}"


_MD_SPECIAL = re.compile(r"([\\|*_`\[\]<>])")


def _md(value) -> str:
    return _MD_SPECIAL.sub(r"\\\1", _value_text(value))


def render_markdown(request) -> str:
    request = _normalise(request)
    lines = [f"# Allowlist request: {_md(request['fqdn'])}", "", "| Field | Value |", "|---|---|"]
    lines += [f"| {label} | {_md(value) or 'none'} |" for _name, label, value in _shown_fields(request)]
    return "\n".join(lines) + "\n"


def render_json(request) -> str:
    return json.dumps(_normalise(request), indent=2, ensure_ascii=False) + "\n"


def _yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # A JSON string is a valid YAML double-quoted scalar; input rules keep line separators out.
    return json.dumps(str(value), ensure_ascii=False)


def render_yaml(request) -> str:
    """Written here rather than by PyYAML: hosts may lack it, and its output varies between versions."""
    lines = ["---"]
    for name, value in _normalise(request).items():
        if isinstance(value, list):
            lines.append(f"{name}:" + ("" if value else " []"))
            lines += [f"  - {_yaml_scalar(v)}" for v in value]
        else:
            lines.append(f"{name}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


def render_csv(requests) -> str:
    """Header plus one row per request (sorted by FQDN); lists are space-separated.

    Every line goes through ``csv_row``: a value starting with = + - @ tab or CR gets a leading single quote, so
    that a spreadsheet opening the fleet file shows it instead of running it as a formula.
    """
    rows = [csv_row(FIELD_NAMES)]
    rows += [csv_row(_value_text(request[name], " ") for name in FIELD_NAMES) for request in sort_requests(requests)]
    return "".join(rows)


def sort_requests(requests) -> list[dict]:
    if isinstance(requests, dict):
        requests = [requests]
    if not isinstance(requests, list | tuple):
        raise SmtpRelayError(f"expected a list of allowlist requests, got {type(requests).__name__}",
                             field="requests")  # fmt: skip
    rows = [_normalise(r) for r in requests]
    seen = set()
    for row in rows:
        if row["fqdn"] in seen:
            raise SmtpRelayError(f"two allowlist requests for the same FQDN {row['fqdn']}: one row per host",
                                 field="fqdn")  # fmt: skip
        seen.add(row["fqdn"])
    return sorted(rows, key=lambda r: r["fqdn"])


def render_fleet_markdown(requests, title: str = "Allowlist request") -> str:
    """One table, one row per host sorted by FQDN; optional columns only when some host has a value."""
    rows = sort_requests(requests)
    columns = [(n, label) for n, label in FIELDS if n not in OPTIONAL_FIELDS or any(r[n] for r in rows)]
    lines = [f"# {_md(title)}", "", "| " + " | ".join(label for _n, label in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(_md(r[n]) for n, _label in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render(request, fmt: str, subject: str = DEFAULT_SUBJECT) -> str:
    if fmt == "mail":
        return render_mail(request, subject)
    if fmt == "markdown":
        return render_markdown(request)
    if fmt == "json":
        return render_json(request)
    if fmt == "yaml":
        return render_yaml(request)
    if fmt == "csv":
        return render_csv([request])
    raise _refuse("format", fmt, "expected one of " + ", ".join(FORMATS))


# ---------------------------------------------------------------------------------------------
# Output file


def write_if_changed(dest: str, content: str, check_mode: bool = False) -> tuple[bool, dict]:
    """Replace ``dest`` atomically only when its content differs; returns (changed, diff).

    The file is compared as bytes: whatever it holds (Latin-1, binary) is replaced, never decoded on the way.
    """
    dest = validate_dest(dest)
    if os.path.isdir(dest):
        raise _refuse("dest", dest, "expected a file path, this is a directory")
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise _refuse("dest", dest, f"its directory {directory} does not exist")
    data = content.encode("utf-8")
    try:
        st = os.stat(dest)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse("dest", dest, "expected a regular file (or none yet)")
        with open(dest, "rb") as f:
            before = f.read()
    except FileNotFoundError:
        before = None
    except OSError as e:
        raise _refuse("dest", dest, f"cannot be read: {e.strerror or e}") from None
    if before == data:
        return False, {}
    diff = {
        # For people: bytes that are not UTF-8 are shown as replacement characters.
        "before": before.decode("utf-8", "replace") if before else "",
        "after": content,
        "before_header": dest if before is not None else f"{dest} (absent)",
        "after_header": dest,
    }
    if check_mode:
        return True, diff
    try:
        write_atomically(dest, data)
    except OSError as e:
        raise _refuse("dest", dest, f"cannot be written: {e.strerror or e}") from None
    return True, diff


# ---------------------------------------------------------------------------------------------
# The one function the module calls


def allowlist_request(params, host, resolver=None, check_mode: bool = False, want_diff: bool = False) -> dict:
    """Build, check, render and (optionally) write one server's allowlist request."""
    opts = validate_params(params)
    if resolver is None:
        resolver = make_resolver(opts["nameservers"], opts["dns_port"], opts["timeout"])
    request, checks = gather(opts, host, resolver)
    valid, worst = is_sound(checks), verdict(checks)
    refused = [c for c in with_status(checks, (FAIL,)) if c["id"] in REFUSING_CHECKS]
    if refused:
        raise SmtpRelayError(
            f"allowlist request for {request['fqdn']} refused: "
            + "; ".join(f"{c['id']}: {c['message']}" for c in refused)
            + " (neither report_only nor fail_on renders such a request)",
            changed=False,
            request=request,
            checks=checks,
            valid=False,
            verdict=worst,
        )
    failing = with_status(checks, opts["fail_on"])
    if failing:
        statuses = ", ".join(sorted({c["status"] for c in failing}))
        raise SmtpRelayError(
            f"allowlist request for {request['fqdn']} has checks with status {statuses} "
            f"(fail_on: {', '.join(opts['fail_on'])}): {describe(checks, opts['fail_on'])}; "
            "fix them, or set report_only (or fail_on) to render it anyway",
            changed=False,
            request=request,
            checks=checks,
            valid=valid,
            verdict=worst,
        )
    rendered = render(request, opts["format"], opts["subject"])
    result = {
        "changed": False,
        "valid": valid,
        "verdict": worst,
        "request": request,
        "checks": checks,
        "rendered": rendered,
        "mail": {"subject": opts["subject"], "body": mail_body(request)},
        "msg": describe(checks),
    }
    if opts["dest"]:
        changed, diff = write_if_changed(opts["dest"], rendered, check_mode)
        result["changed"] = changed
        result["dest"] = opts["dest"]
        if want_diff and changed:
            result["diff"] = diff
    return result
