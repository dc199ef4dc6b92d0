# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: sender_check's engine: per sender domain, what will go wrong before mail is lost."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._sender import dmarc as _dmarc

from ansible_collections.smtp.relay.plugins.module_utils._relayhost import providers as _providers

from ansible_collections.smtp.relay.plugins.module_utils._sender import dkim as _sender_dkim

from ansible_collections.smtp.relay.plugins.module_utils._sender import spf as _spf
from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    PASS,
    SKIP,
    UNKNOWN,
    WARN,
    describe,
    fail_on_option,
    int_option,
    is_sound,
    number_option,
    shown,
    verdict,
    with_status,
)
from ansible_collections.smtp.relay.plugins.module_utils._checks import check as _check
from ansible_collections.smtp.relay.plugins.module_utils._dns import (
    NXDOMAIN,
    Resolver,
    make_resolver,
    nameserver_addresses,
    run_bounded,
)
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import RelayhostError, parse_relayhost
from ansible_collections.smtp.relay.plugins.module_utils._sender.names import (
    matching_rule,
    normalize_domain,
    parse_rules,
    placeholder,
    special_use,
    split_address,
)

PROVIDERS = tuple(_providers.PROVIDERS)
DEFAULT_WORKERS = 16
DEFAULT_TIMEOUT = 5.0
DEFAULT_FAIL_ON = (FAIL,)
# Bounds of the numeric options (documented in the module): a timer beyond them is a typo, not a wish.
MAX_TIMEOUT = 300.0
MAX_DEADLINE = 86400.0
MAX_WORKERS = 256
_SELECTOR_LABEL = "abcdefghijklmnopqrstuvwxyz0123456789-_"


def check(check_id, status, message, stage, hint=None, **extra):
    return _check(check_id, status, message, stage=stage, hint=hint, **extra)


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


@dataclass
class Sender:
    """One domain to report on, with the addresses that brought it in and the name checks already done."""

    key: str
    domain: str | None
    addresses: list[str] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    dns: bool = True  # False once a name check makes DNS questions pointless


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
    if not isinstance(value, list | tuple):
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
    for selector in _list_option(params, "dkim_selectors"):
        text = selector.strip().lower() if isinstance(selector, str) else ""
        labels = text.split(".")
        if not text or any(not label or len(label) > 63 or set(label) - set(_SELECTOR_LABEL) for label in labels):
            raise SmtpRelayError(
                f"dkim_selectors: {shown(selector)} is not a selector; accepted: DNS labels such as s1 or mail.2024",
                field="dkim_selectors",
            )
        opts.dkim_selectors.append(text)
    return opts


# --- names: no DNS needed ----------------------------------------------------------------------------------------


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


def name_checks(sender: Sender, opts: Options) -> None:
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
    sender.checks.append(_allowed_check(name, opts))


def _allowed_check(name: str, opts: Options) -> dict:
    if not opts.rules:
        return check("domain.not_allowed", SKIP, "no allowed_domains given", "policy")
    rules = ", ".join(str(r) for r in opts.rules)
    rule = matching_rule(opts.rules, name)
    if rule:
        return check("domain.not_allowed", PASS, f"{name} is allowed by {rule}", "policy", relay_action="accept")
    hint = f"add {name} (or *.{name} for its subdomains) to the relay's approved list, or send as an approved domain"
    if opts.rewrite_domain:
        return check(
            "domain.not_allowed",
            WARN,
            f"{name} is not in the approved list ({rules}): the relay rewrites the sender to {opts.rewrite_domain}",
            "policy",
            hint=hint,
            relay_action="rewrite",
            rewrite_to=opts.rewrite_domain,
        )
    return check(
        "domain.not_allowed",
        FAIL,
        f"{name} is not in the approved list ({rules}): the relay rejects it",
        "policy",
        hint=hint,
        relay_action="reject",
    )


# --- DNS ---------------------------------------------------------------------------------------------------------


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


def spf_checks(walked: _spf.SpfWalk) -> list[dict]:
    name = walked.domain
    if walked.status == "unknown":
        return [check("spf.record", UNKNOWN, walked.detail, "spf")]
    if walked.status == "none":
        return [
            check(
                "spf.record",
                WARN,
                f"{name}: {walked.detail}",
                "spf",
                hint="publish one TXT record 'v=spf1 ... -all' that includes the relay",
            )
        ]
    if walked.status in ("multiple", "syntax"):
        return [
            check(
                "spf.record",
                FAIL,
                f"{name}: {walked.detail}",
                "spf",
                record=walked.record,
                hint="publish exactly one valid v=spf1 record (RFC 7208): receivers return permerror",
            )
        ]
    checks = [check("spf.record", PASS, f"{name} publishes one SPF record", "spf", record=walked.record)]
    if walked.sends_no_mail:
        checks.append(
            check(
                "spf.sends_no_mail",
                FAIL,
                f"{name} says it sends no mail (v=spf1 -all)",
                "spf",
                hint="authorize the relay in the SPF record, or send from another domain",
            )
        )
    checks.append(
        _limit_check(
            "spf.lookups",
            count=walked.lookups,
            limit=_spf.MAX_LOOKUPS,
            walked=walked,
            what="DNS-querying terms (include, a, mx, ptr, exists, redirect)",
            hint="flatten includes or drop unused ones",
        )
    )
    checks.append(
        _limit_check(
            "spf.void_lookups",
            count=walked.void_lookups,
            limit=_spf.MAX_VOID_LOOKUPS,
            walked=walked,
            what="lookups that return no data",
            hint="remove terms that point at names without records",
            names=walked.void_names,
        )
    )
    if walked.problems:
        checks.append(
            check(
                "spf.includes",
                FAIL,
                "; ".join(walked.problems),
                "spf",
                hint="every include and redirect target must publish exactly one SPF record",
            )
        )
    elif not walked.unanswered:
        checks.append(
            check(
                "spf.includes",
                PASS,
                f"{len(walked.includes)} include/redirect targets all valid",
                "spf",
                includes=walked.includes,
            )
        )
    return checks


def _limit_check(check_id, *, count, limit, walked, what, hint, **extra):
    more = "more than " if walked.capped else ""
    text = f"{more}{count} {what}; limit {limit}"
    if count > limit or walked.capped:
        return check(
            check_id,
            FAIL,
            f"{walked.domain}: {text}: receivers return permerror",
            "spf",
            hint=hint,
            count=count,
            limit=limit,
            **extra,
        )
    if walked.unanswered:
        return check(
            check_id,
            UNKNOWN,
            f"{walked.domain}: at least {text}; no answer for {', '.join(walked.unanswered)}",
            "spf",
            count=count,
            limit=limit,
            **extra,
        )
    return check(check_id, PASS, f"{walked.domain}: {text}", "spf", count=count, limit=limit, **extra)


_SPF_STATUS = {"pass": PASS, "fail": FAIL, "softfail": FAIL, "permerror": FAIL, "neutral": WARN, "none": WARN}


def relay_spf_checks(resolver: Resolver, envelope: str, relay: Relay, helo: str) -> tuple[list[dict], bool | None]:
    """spf.relay_not_authorized per egress IP, and whether SPF passes for all of them (None: unknown)."""
    if not relay.ips:
        return [], None
    if not _spf.PYSPF.available:
        return [
            check(
                "spf.relay_not_authorized",
                SKIP,
                _spf.PYSPF.not_installed("SPF not evaluated"),
                "spf",
                hint=_spf.PYSPF.install_hint,
            )
        ], None
    checks, verdicts = [], []
    for ip in relay.ips:
        result, explanation = _spf.evaluate(resolver, ip, f"postmaster@{envelope}", helo)
        status = _SPF_STATUS.get(result, UNKNOWN)
        verdicts.append(None if status == UNKNOWN else result == "pass")
        verb = "is authorized" if result == "pass" else "is not authorized"
        checks.append(
            check(
                "spf.relay_not_authorized",
                status,
                f"relay IP {ip} {verb} by SPF of {envelope} ({result})",
                "spf",
                ip=ip,
                result=result,
                envelope_domain=envelope,
                explanation=explanation,
                hint=None if result == "pass" else f"add ip4:/ip6: or include: for {ip} to {envelope}'s SPF",
            )
        )
    if False in verdicts:
        return checks, False
    return checks, None if None in verdicts else True


def provider_check(walked: _spf.SpfWalk, provider: str | None) -> list[dict]:
    include = _providers.spf_include(provider)
    if not include:
        return []
    if walked.status != "ok":
        return [
            check(
                "spf.provider_include",
                UNKNOWN if walked.status == "unknown" else FAIL,
                f"{walked.domain} has no usable SPF record to include {include}",
                "spf",
                include=include,
            )
        ]
    if _spf.provider_included(walked, include):
        return [
            check(
                "spf.provider_include", PASS, f"{walked.domain} includes {include} ({provider})", "spf", include=include
            )
        ]
    return [
        check(
            "spf.provider_include",
            FAIL,
            f"{walked.domain} does not include {include} ({provider})",
            "spf",
            include=include,
            hint=f"add include:{include} before the final all",
        )
    ]


def dkim_checks(resolver: Resolver, domain: str, selectors: list[str]) -> tuple[list[dict], bool | None]:
    """dkim.* per selector, and whether at least one usable key was found (None: unknown)."""
    checks, usable = [], []
    for selector in selectors:
        key = _sender_dkim.check_key(resolver, selector, domain)
        extra = {"selector": selector, "name": key.name, "cname_chain": list(key.cnames)}
        problems = "; ".join(key.problems)
        if key.status == "unknown":
            checks.append(check("dkim.record", UNKNOWN, problems, "dkim", **extra))
            usable.append(None)
            continue
        if key.status in ("missing", "invalid"):
            checks.append(
                check(
                    "dkim.record",
                    FAIL,
                    problems,
                    "dkim",
                    **extra,
                    hint="publish the signer's public key at this name (often a CNAME to the provider)",
                )
            )
            usable.append(False)
            continue
        via = f" via {' -> '.join(key.cnames)}" if key.cnames else ""
        checks.append(check("dkim.record", PASS, f"key record found at {key.name}{via}", "dkim", **extra))
        checks.append(_key_check(key, extra))
        checks.append(
            check(
                "dkim.testing",
                WARN,
                f"{key.name} has t=y: verifiers may treat signatures as unsigned",
                "dkim",
                hint="remove t=y once signing works",
                **extra,
            )
            if key.testing
            else check("dkim.testing", PASS, f"{key.name} is not in testing mode", "dkim", **extra)
        )
        usable.append(key.status == "ok" and (key.key_type != "rsa" or key.key_bits >= _sender_dkim.MIN_RSA_BITS))
    if not usable:
        return checks, None
    if True in usable:
        return checks, True
    return checks, None if None in usable else False


def _key_check(key, extra) -> dict:
    info = {"key_type": key.key_type, "key_bits": key.key_bits, **extra}
    if key.status == "revoked":
        return check(
            "dkim.key",
            FAIL,
            f"{key.name}: key revoked (empty p=)",
            "dkim",
            **info,
            hint="publish a current key or stop signing with this selector",
        )
    if key.key_type == "rsa" and key.key_bits < _sender_dkim.MIN_RSA_BITS:
        return check(
            "dkim.key",
            FAIL,
            f"{key.name}: RSA key of {key.key_bits} bits; receivers refuse < 1024",
            "dkim",
            **info,
            hint="rotate to a 2048-bit RSA key",
        )
    if key.key_type == "rsa" and key.key_bits < _sender_dkim.GOOD_RSA_BITS:
        return check(
            "dkim.key",
            WARN,
            f"{key.name}: RSA key of {key.key_bits} bits; 2048 is expected",
            "dkim",
            **info,
            hint="rotate to a 2048-bit RSA key",
        )
    return check("dkim.key", PASS, f"{key.name}: {key.key_type} key of {key.key_bits} bits", "dkim", **info)


def dmarc_checks(resolver, domain, *, envelope, spf_pass, dkim_domain, dkim_pass) -> list[dict]:
    record = _dmarc.lookup(resolver, domain)
    if record.status == "unknown":
        return [check("dmarc.record", UNKNOWN, "; ".join(record.problems), "dmarc")]
    if record.status == "invalid":
        return [
            check(
                "dmarc.record",
                FAIL,
                f"{domain}: " + "; ".join(record.problems),
                "dmarc",
                found_at=record.found_at,
                record=record.record,
                hint="receivers ignore an invalid DMARC record: fix it to v=DMARC1; p=...",
            )
        ]
    if record.status == "none":
        return [
            check(
                "dmarc.record",
                WARN,
                f"no DMARC record for {domain} or its organizational domain",
                "dmarc",
                hint="large mailbox providers require one from bulk senders: v=DMARC1; p=none; rua=mailto:...",
            ),
            check("dmarc.alignment", SKIP, "no DMARC policy: nothing to align with", "dmarc"),
        ]
    policy = record.policy_for(domain)
    tags = record.tags
    info = {
        "found_at": record.found_at,
        "inherited": record.inherited,
        "policy": tags.get("p"),
        "subdomain_policy": tags.get("sp", tags.get("p")),
        "applied_policy": policy,
        "adkim": record.adkim,
        "aspf": record.aspf,
        "pct": record.pct,
        "rua": _dmarc.reporting_addresses(tags, "rua"),
        "ruf": _dmarc.reporting_addresses(tags, "ruf"),
    }
    where = f" (inherited from {record.found_at})" if record.inherited else ""
    checks = [
        check("dmarc.record", PASS, f"{domain}: DMARC policy {policy}{where}", "dmarc", record=record.record, **info)
    ]
    prediction = _dmarc.predict(
        record,
        from_domain=domain,
        envelope_domain=envelope,
        spf_pass=spf_pass,
        dkim_domain=dkim_domain,
        dkim_pass=dkim_pass,
    )
    facts = {
        "from_domain": domain,
        "envelope_domain": envelope,
        "dkim_domain": dkim_domain,
        "spf_aligned": prediction.spf_aligned,
        "spf_pass": prediction.spf_pass,
        "dkim_aligned": prediction.dkim_aligned,
        "dkim_pass": prediction.dkim_pass,
        "applied_policy": policy,
    }
    text = (
        f"From {domain}, envelope {envelope} (SPF aligned: {prediction.spf_aligned}, pass: {spf_pass}), "
        f"DKIM d={dkim_domain or 'none'} (aligned: {prediction.dkim_aligned}, pass: {prediction.dkim_pass})"
    )
    if prediction.passes:
        checks.append(check("dmarc.alignment", PASS, f"DMARC passes: {text}", "dmarc", **facts))
    elif prediction.passes is None:
        checks.append(
            check(
                "dmarc.alignment",
                UNKNOWN,
                f"DMARC outcome unknown: {text}",
                "dmarc",
                **facts,
                hint="give relay_ips or relay_host, and dkim_selectors, so both paths can be judged",
            )
        )
    else:
        status = WARN if policy == "none" or info["pct"] == 0 else FAIL
        checks.append(
            check(
                "dmarc.alignment",
                status,
                f"DMARC fails (policy {policy}): {text}",
                "dmarc",
                **facts,
                hint="sign with DKIM d= the From domain, or authorize the relay in the SPF of an "
                "aligned envelope domain",
            )
        )
    return checks


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


# --- entry point -------------------------------------------------------------------------------------------------


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
            name_checks(sender, opts)
    to_ask = [s for s in senders.values() if s.dns]
    relay = Relay(opts.relay_ips, "relay_ips" if opts.relay_ips else "none")
    if to_ask or (opts.relay_host and not opts.relay_ips):
        if resolver is None:
            resolver = make_resolver(opts.nameservers, opts.dns_port, opts.timeout, opts.deadline)
        relay = resolve_relay(resolver, opts)

    def run(sender: Sender) -> list[dict]:
        return _guarded(sender, lambda s: dns_checks(resolver, s, opts, relay))

    for sender, extra in zip(to_ask, run_bounded(run, to_ask, opts.workers), strict=True):
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
