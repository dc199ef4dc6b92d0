# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the allowlist request: its fields, the input rules, and the one address rule.

Bad input is refused here, naming the field and what is accepted, before anything is looked up.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    bool_option,
    check,
    fail_on_option,
    int_option,
    number_option,
    shown,
)
from ansible_collections.smtp.relay.plugins.module_utils._dns import nameserver_addresses, normalize_name
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._sender.names import normalize_domain
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
    ("shared_egress", "Shared egress"),
    ("team", "Owning team"),
    ("contact", "Contact"),
    ("volume_per_day", "Expected volume per day"),
    ("sender_domains", "Sender domains"),
    ("relay", "Relay"),
    ("monitoring", "Monitoring"),
    ("automatic_updates", "Automatic security updates"),
    ("package_lists_updated", "Package lists updated"),
)
FIELD_NAMES = tuple(name for name, _label in FIELDS)
# Shown in people-facing renderings only when set; the form fields above them always are.
OPTIONAL_FIELDS = frozenset(
    {
        "shared_egress",
        "volume_per_day",
        "sender_domains",
        "relay",
        "monitoring",
        "automatic_updates",
        "package_lists_updated",
    }
)
MAX_VOLUME_PER_DAY = 10**9
MAX_SENDER_DOMAINS = 100
TEXT_LIMITS = {"purpose": 500, "team": 200, "contact": 200, "monitoring": 500, "subject": 200}

_MAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9.-]+)$")
# A named channel: `#ops`, `slack:#ops-mail`, `matrix:#ops:example.org`.
_CHANNEL = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*:)?#[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def refuse(field: str, value, accepted: str, **details) -> SmtpRelayError:
    return SmtpRelayError(f"{field} {shown(value)} is not valid: {accepted}", field=field, **details)


def validate_text(field: str, value, required: bool = True):
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise SmtpRelayError(f"{field} is required and must not be empty", field=field)
        return None
    if not isinstance(value, str):
        raise refuse(field, value, "expected text")
    value = value.strip()
    if not value.isprintable():
        raise refuse(field, value, "expected one line of printable text (no newline, tab or control character)")
    if len(value) > TEXT_LIMITS[field]:
        raise refuse(field, value, f"expected at most {TEXT_LIMITS[field]} characters")
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
        raise refuse("fqdn", value, "expected a host name")
    value = value.strip()
    if not value.isprintable():
        # Checked first: the label pattern's "$" would let a newline before a dot through.
        raise refuse("fqdn", value, "expected one line without control or line-separator characters")
    problem = fqdn_problem(value)
    if problem:
        raise refuse("fqdn", value, problem)
    return normalize_name(value)


def validate_contact(value) -> str:
    value = validate_text("contact", value)
    mail = _MAIL.match(value)
    if mail and is_hostname(mail.group(1)) and "." in mail.group(1):
        return value
    if _CHANNEL.match(value):
        return value
    raise refuse(
        "contact",
        value,
        "expected a mail address (team@example.org) or a named chat channel (#mail-ops, slack:#mail-ops)",
    )


def network(field: str, text, versions=(4, 6)):
    """An address or a network (published egress range), normalised; /32 and /128 become addresses."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True) if isinstance(text, str) else None
    except ValueError:
        net = None
    if net is None or net.version not in versions:
        family = " or ".join(f"IPv{v}" for v in versions)
        raise refuse(field, text, f"expected an {family} address or network (CIDR, host bits zero)")
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


def problem_check(item, field: str):
    """The failed check for an address ``address_problem`` refuses, else None."""
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
        if values is not None and not isinstance(values, (list, tuple)):
            raise refuse(field, values, "expected a list of addresses or networks")
        for text in values or []:
            item = network(field, text, versions)
            refused = problem_check(item, field)
            if refused:
                raise refuse(field, text, refused["message"], checks=[refused], valid=False, verdict=FAIL)
            if item not in result[item.version]:
                result[item.version].append(item)
    return result


def validate_sender_domains(value) -> list[str]:
    """The domains the server sends as, by the sender checks' own domain rule: lower-case A-labels, each once."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise refuse("sender_domains", value, "expected a list of domain names")
    if len(value) > MAX_SENDER_DOMAINS:
        raise refuse("sender_domains", value, f"expected at most {MAX_SENDER_DOMAINS} domains")
    domains = []
    for item in value:
        try:
            domain = normalize_domain(item)
        except ValueError as e:
            raise refuse("sender_domains", item, f"expected a domain name like example.org; it {e}") from None
        if domain not in domains:
            domains.append(domain)
    return domains


def validate_volume(value) -> int | None:
    if value is None:
        return None
    return int_option("volume_per_day", value, minimum=0, maximum=MAX_VOLUME_PER_DAY)


def validate_shared_egress(value, addresses) -> bool:
    """Shared egress names ranges the platform publishes: they must be given, they cannot be detected."""
    shared = bool_option("shared_egress", value, default=False)
    if shared and not (addresses[4] or addresses[6]):
        raise refuse("shared_egress", value, "give the platform's egress ranges in ipv4, ipv6 or egress with it")
    return shared


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
        raise refuse("dest", value, "expected the path of a file")
    return value


def output_params(params) -> dict:
    """The options of the rendering, the file and the network (format, subject, dest, timeout)."""
    fmt = "mail" if params.get("format") is None else params["format"]
    if fmt not in FORMATS:
        raise refuse("format", fmt, "expected one of " + ", ".join(FORMATS))
    return {
        "format": fmt,
        "subject": validate_text("subject", DEFAULT_SUBJECT if params.get("subject") is None else params["subject"]),
        "dest": validate_dest(params.get("dest")),
        "timeout": number_option("timeout", params.get("timeout"), default=DEFAULT_TIMEOUT, maximum=MAX_TIMEOUT),
    }


# The fields a given request holds: giving them as well would leave two answers to one question.
REQUEST_OPTIONS = ("fqdn", "purpose", "team", "contact", "monitoring", "volume_per_day", "sender_domains")


def validate_given(params) -> dict:
    """The options that apply to a request given whole (``request``): only how it is rendered, written and sent."""
    both = [name for name in REQUEST_OPTIONS if params.get(name) not in (None, [])]
    if both:
        raise SmtpRelayError(f"request is given whole: {', '.join(both)} cannot be given with it", field="request")
    return output_params(params)


def validate_params(params) -> dict:
    """Checked, normalised copy of the module parameters: bad values are refused by name, never replaced by a
    default (only an option that was not given, None, takes its default)."""
    relay_host = params.get("relay_host")
    if relay_host is not None and not isinstance(relay_host, str):
        raise refuse("relay_host", relay_host, "expected a host name, an IP address or a Postfix relayhost")
    relay_public = params.get("relay_public")
    if relay_public is not None:
        relay_public = bool_option("relay_public", relay_public, default=False)
    report_only = bool_option("report_only", params.get("report_only"), default=False)
    addresses = validate_addresses(params)
    return {
        "fqdn": validate_fqdn(params.get("fqdn")),
        "purpose": validate_text("purpose", params.get("purpose")),
        "team": validate_text("team", params.get("team")),
        "contact": validate_contact(params.get("contact")),
        "monitoring": validate_text("monitoring", params.get("monitoring"), required=False),
        "addresses": addresses,
        "shared_egress": validate_shared_egress(params.get("shared_egress"), addresses),
        "volume_per_day": validate_volume(params.get("volume_per_day")),
        "sender_domains": validate_sender_domains(params.get("sender_domains")),
        "egress_given": bool(params.get("egress")),
        "relay_host": relay_host.strip() if relay_host and relay_host.strip() else None,
        "relays": validate_relay(relay_host),
        "relay_public": relay_public,
        "prefer_ipv6": bool_option("prefer_ipv6", params.get("prefer_ipv6"), default=False),
        **output_params(params),
        "nameservers": nameserver_addresses(params.get("nameservers")),
        "dns_port": int_option("dns_port", params.get("dns_port"), default=53, minimum=1, maximum=65535),
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


def listed(value) -> list:
    """A field that holds a list, given as one value or none."""
    return list(value) if isinstance(value, (list, tuple)) else [value] if value else []


def request_row(request) -> dict:
    """A request from anywhere (the module's result, a host's facts) as a dict in field order.

    Renderings (the fleet files too) never hold an address the module would refuse.
    """
    if not isinstance(request, dict) or not request.get("fqdn"):
        raise SmtpRelayError(f"an allowlist request must be a dict with at least fqdn, got {shown(request)}",
                             field="request")  # fmt: skip
    row = {name: request.get(name) for name in FIELD_NAMES}
    for field, version in (("ipv4", 4), ("ipv6", 6)):
        values = row[field] if isinstance(row[field], (list, tuple)) else [row[field]] if row[field] else []
        for text in values:
            try:
                item = network(field, str(text), (version,))
            except SmtpRelayError as e:
                raise SmtpRelayError(f"allowlist request for {shown(row['fqdn'])}: {e.msg}", field=field) from None
            refused = address_problem(item)
            if refused:
                raise SmtpRelayError(
                    f"allowlist request for {shown(row['fqdn'])}: {field} {item} is {refused[1]}", field=field
                )
    return row


_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def validate_request(value) -> dict:
    """A request built by an earlier run (its ``request`` result), checked as input again before it is rendered or
    sent: every field by the rule that built it, so that a request edited on the way is held to the same rules."""
    row = request_row(value)
    try:
        if row["relay"] is not None:
            validate_relay(row["relay"])
        if row["automatic_updates"] not in (None, "enabled", "disabled", "unknown"):
            raise refuse("automatic_updates", row["automatic_updates"], "expected enabled, disabled or unknown")
        updated = row["package_lists_updated"]
        if updated is not None and not (isinstance(updated, str) and _DATE.match(updated)):
            raise refuse("package_lists_updated", updated, "expected a date, YYYY-MM-DD")
        row.update(
            fqdn=validate_fqdn(row["fqdn"]),
            purpose=validate_text("purpose", row["purpose"]),
            team=validate_text("team", row["team"]),
            contact=validate_contact(row["contact"]),
            monitoring=validate_text("monitoring", row["monitoring"], required=False),
            volume_per_day=validate_volume(row["volume_per_day"]),
            sender_domains=validate_sender_domains(row["sender_domains"]),
            shared_egress=True if bool_option("shared_egress", row["shared_egress"], default=False) else None,
            ipv4=[str(network("ipv4", str(a), (4,))) for a in listed(row["ipv4"])],
            ipv6=[str(network("ipv6", str(a), (6,))) for a in listed(row["ipv6"])],
        )
    except SmtpRelayError as e:
        raise SmtpRelayError(f"request: {e.msg}", field="request") from None
    return row
