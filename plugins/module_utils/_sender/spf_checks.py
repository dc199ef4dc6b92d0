# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: sender_check's spf.* checks, from a static walk (spf.py) and pyspf's evaluation.

spf.record, spf.sends_no_mail, spf.lookups, spf.void_lookups and spf.includes judge what a domain publishes;
spf.relay_not_authorized asks, per egress IP of the relay, whether a receiver would let it send for the envelope
domain; spf.provider_include whether the provider's include is reached.
"""

from __future__ import annotations

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP, UNKNOWN, WARN, check
from ansible_collections.smtp.relay.plugins.module_utils._dns import Resolver
from ansible_collections.smtp.relay.plugins.module_utils._relayhost import providers as _providers

# Through the module, not its names: tests stand in for pyspf being absent by replacing spf.PYSPF.
from ansible_collections.smtp.relay.plugins.module_utils._sender import spf as _spf


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


def relay_spf_checks(resolver: Resolver, envelope: str, relay, helo: str) -> tuple[list[dict], bool | None]:
    """spf.relay_not_authorized per egress IP (``relay.ips``), and whether SPF passes for all (None: unknown)."""
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
