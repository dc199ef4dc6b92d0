# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: sender_check's engine: per sender domain, what will go wrong before mail is lost.

Only the orchestration lives here: the options (all refused by name before any DNS question), the relay's egress
addresses, the checks of each domain run on a bounded pool with each domain's failures kept to itself, and the
result. What each check knows is in the file named for it: names.py, spf_checks.py (over spf.py and
spf_record.py), dkim.py, dmarc.py.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    PASS,
    UNKNOWN,
    check,
    describe,
    fail_on_option,
    int_option,
    is_sound,
    number_option,
    shown,
    verdict,
    with_status,
)
from ansible_collections.smtp.relay.plugins.module_utils._dns import (
    Resolver,
    make_resolver,
    nameserver_addresses,
    run_bounded,
)
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost import providers as _providers
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import RelayhostError, parse_relayhost

# spf through the module: tests replace spf.walk to break one domain's checks on purpose.
from ansible_collections.smtp.relay.plugins.module_utils._sender import spf as _spf
from ansible_collections.smtp.relay.plugins.module_utils._sender.dkim import dkim_checks, parse_selectors
from ansible_collections.smtp.relay.plugins.module_utils._sender.dmarc import dmarc_checks
from ansible_collections.smtp.relay.plugins.module_utils._sender.names import (
    Sender,
    collect_senders,
    existence_checks,
    name_checks,
    normalize_domain,
    parse_rules,
)
from ansible_collections.smtp.relay.plugins.module_utils._sender.spf_checks import (
    provider_check,
    relay_spf_checks,
    spf_checks,
)

PROVIDERS = tuple(_providers.PROVIDERS)
DEFAULT_WORKERS = 16
DEFAULT_TIMEOUT = 5.0
DEFAULT_FAIL_ON = (FAIL,)
# Bounds of the numeric options (documented in the module): a timer beyond them is a typo, not a wish.
MAX_TIMEOUT = 300.0
MAX_DEADLINE = 86400.0
MAX_WORKERS = 256


@dataclass
class Options:
    """Validated module options; built by ``options_from_params`` so bad input fails before any DNS query."""

    rules: list = field(default_factory=list)
    rewrite_domain: str | None = None
    envelope_domain: str | None = None
    relay_ips: list[str] = field(default_factory=list)
    relay_host: str | None = None
    provider: str | None = None
    dkim_selectors: list[str] = field(default_factory=list)
    dkim_domain: str | None = None
    workers: int = DEFAULT_WORKERS
    nameservers: list[str] = field(default_factory=list)
    dns_port: int = 53
    timeout: float = DEFAULT_TIMEOUT
    deadline: float | None = None
    fail_on: tuple = DEFAULT_FAIL_ON


def _domain_option(params, name):
    value = params.get(name)
    if value is None or value == "":
        return None
    try:
        return normalize_domain(value)
    except ValueError as exc:
        raise SmtpRelayError(f"{name}: {shown(value)} {exc}; accepted: a domain name", field=name) from None


def _list_option(params, name) -> list:
    value = params.get(name)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise SmtpRelayError(f"{name}: expected a list, got {shown(value)}", field=name)
    return list(value)


def options_from_params(params: dict) -> Options:
    """Every option checked (bad values refused by name, never replaced by a default) before any DNS question."""
    opts = Options(
        rules=parse_rules(_list_option(params, "allowed_domains")),
        rewrite_domain=_domain_option(params, "rewrite_domain"),
        envelope_domain=_domain_option(params, "envelope_domain"),
        dkim_domain=_domain_option(params, "dkim_domain"),
        provider=params.get("provider"),
        workers=int_option("workers", params.get("workers"), default=DEFAULT_WORKERS, minimum=1, maximum=MAX_WORKERS),
        nameservers=nameserver_addresses(params.get("nameservers")),
        dns_port=int_option("dns_port", params.get("dns_port"), default=53, minimum=1, maximum=65535),
        timeout=number_option("timeout", params.get("timeout"), default=DEFAULT_TIMEOUT, maximum=MAX_TIMEOUT),
        fail_on=fail_on_option(params.get("fail_on"), default=DEFAULT_FAIL_ON),
    )
    if params.get("deadline") is not None:
        opts.deadline = number_option("deadline", params["deadline"], maximum=MAX_DEADLINE)
    if opts.provider is not None and opts.provider not in PROVIDERS:
        raise SmtpRelayError(
            f"provider: {shown(opts.provider)} is not known; accepted: {', '.join(PROVIDERS)}", field="provider"
        )
    for ip in _list_option(params, "relay_ips"):
        try:
            if not isinstance(ip, str):
                raise ValueError(ip)
            opts.relay_ips.append(str(ipaddress.ip_address(ip.strip())))
        except ValueError:
            raise SmtpRelayError(
                f"relay_ips: {shown(ip)} is not an IP address; give the relay's egress IPv4/IPv6 addresses",
                field="relay_ips",
            ) from None
    if params.get("relay_host") is not None and params.get("relay_host") != "":
        try:
            relays = parse_relayhost(params["relay_host"])
        except RelayhostError as exc:
            raise SmtpRelayError(f"relay_host: {exc.msg}", field="relay_host") from None
        if not relays:
            raise SmtpRelayError(
                f"relay_host: {shown(params['relay_host'])} names no relay; accepted: a host name or a Postfix "
                "relayhost such as [smtp.example.org]:587",
                field="relay_host",
            )
        opts.relay_host = relays[0]["host"]
    opts.dkim_selectors = parse_selectors(_list_option(params, "dkim_selectors"))
    return opts


# --- the relay -------------------------------------------------------------------------------------------------------


@dataclass
class Relay:
    ips: list[str]
    source: str  # relay_ips | relay_host | none
    checks: list[dict] = field(default_factory=list)


def resolve_relay(resolver: Resolver | None, opts: Options) -> Relay:
    if opts.relay_ips:
        return Relay(opts.relay_ips, "relay_ips")
    if not opts.relay_host:
        return Relay([], "none")
    try:
        return Relay([str(ipaddress.ip_address(opts.relay_host))], "relay_host")
    except ValueError:
        pass
    ips, answers = resolver.addresses(opts.relay_host)
    relay = Relay(ips, "relay_host")
    if ips:
        relay.checks.append(
            check(
                "relay.addresses",
                PASS,
                f"{opts.relay_host} resolves to {', '.join(ips)}",
                "dns",
                hint="these are taken as the relay's egress IPs; give relay_ips when it sends from others",
            )
        )
    elif all(a.answered for a in answers):
        relay.checks.append(check("relay.addresses", FAIL, f"{opts.relay_host} has no A or AAAA record", "dns"))
    else:
        relay.checks.append(check("relay.addresses", UNKNOWN, f"{opts.relay_host}: no answer from DNS", "dns"))
    return relay


# --- one domain ------------------------------------------------------------------------------------------------------


def dns_checks(resolver: Resolver, sender: Sender, opts: Options, relay: Relay) -> list[dict]:
    name = sender.domain
    checks, exists = existence_checks(resolver, name)
    if not exists:
        return checks
    walked = _spf.walk(resolver, name)
    checks += spf_checks(walked)
    rewritten = opts.rewrite_domain and any(
        c["id"] == "domain.not_allowed" and c.get("relay_action") == "rewrite" for c in sender.checks
    )
    envelope = opts.rewrite_domain if rewritten else (opts.envelope_domain or name)
    envelope_walk = walked if envelope == name else _spf.walk(resolver, envelope)
    relay_checks, spf_pass = relay_spf_checks(resolver, envelope, relay, opts.relay_host or envelope)
    checks += relay_checks
    checks += provider_check(envelope_walk, opts.provider)
    dkim_domain = opts.dkim_domain or (name if opts.dkim_selectors else None)
    dkim_pass = None
    if opts.dkim_selectors:
        dkim, dkim_pass = dkim_checks(resolver, dkim_domain, opts.dkim_selectors)
        checks += dkim
    checks += dmarc_checks(
        resolver, name, envelope=envelope, spf_pass=spf_pass, dkim_domain=dkim_domain, dkim_pass=dkim_pass
    )
    return checks


def _guarded(sender: Sender, work) -> list[dict]:
    """One domain's DNS checks; whatever goes wrong in them stays that domain's (a failed check), never the run's."""
    try:
        return work(sender)
    except Exception as exc:  # the point: one domain's bad data must not spoil the others
        text = str(exc)
        error = f"{type(exc).__name__}: {text if len(text) <= 200 else text[:200] + '...'}"
        return [
            check(
                "domain.check_error",
                FAIL,
                f"{sender.domain}: the checks stopped on unexpected data ({error})",
                "internal",
                hint="nothing after this point was checked for this domain; please report it with its DNS records",
            )
        ]


def _domain_result(sender: Sender) -> dict:
    return {
        "addresses": sender.addresses,
        "valid": is_sound(sender.checks),
        "verdict": verdict(sender.checks),
        "checks": sender.checks,
    }


def check_senders(params: dict, resolver: Resolver | None = None) -> dict:
    """The sender_check result ``{valid, verdict, domains, relay, msg, dns_queries}`` for the module's parameters.

    Raises SmtpRelayError, with the whole result as details, when a check has one of the ``fail_on`` statuses.
    """
    if not params.get("addresses") and not params.get("domains"):
        raise SmtpRelayError("give at least one sender in addresses or domains", field="addresses")
    opts = options_from_params(params)
    senders = collect_senders(_list_option(params, "addresses"), _list_option(params, "domains"))
    for sender in senders.values():
        if sender.domain:
            name_checks(sender, opts.rules, opts.rewrite_domain)
    to_ask = [s for s in senders.values() if s.dns]
    relay = Relay(opts.relay_ips, "relay_ips" if opts.relay_ips else "none")
    if to_ask or (opts.relay_host and not opts.relay_ips):
        if resolver is None:
            resolver = make_resolver(opts.nameservers, opts.dns_port, opts.timeout, opts.deadline)
        relay = resolve_relay(resolver, opts)

    def run(sender: Sender) -> list[dict]:
        return _guarded(sender, lambda s: dns_checks(resolver, s, opts, relay))

    for sender, extra in zip(to_ask, run_bounded(run, to_ask, opts.workers)):
        sender.checks.extend(extra)
    all_checks = [c for s in senders.values() for c in s.checks] + relay.checks
    details = {
        "valid": is_sound(all_checks),
        "verdict": verdict(all_checks),
        "domains": {s.key: _domain_result(s) for s in senders.values()},
        "relay": {"host": opts.relay_host, "ips": relay.ips, "source": relay.source, "checks": relay.checks},
        "dns_queries": resolver.asked if resolver else 0,
    }
    failing = with_status(all_checks, opts.fail_on)
    if failing:
        statuses = ", ".join(sorted({c["status"] for c in failing}))
        raise SmtpRelayError(
            f"{len(failing)} sender check(s) with status {statuses} (fail_on: {', '.join(opts.fail_on)}): "
            + describe(all_checks),
            **details,
        )
    return {**details, "msg": describe(all_checks)}
