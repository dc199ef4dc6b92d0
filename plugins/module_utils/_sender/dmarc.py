# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: DMARC (RFC 7489) record discovery, parsing, alignment prediction, and sender_check's
dmarc.* checks.

The organizational domain comes from a small built-in rule, not the Public Suffix List (which would need the
network or a bundled copy to keep current): the last two labels, or three under the common multi-label public
suffixes below. Names under other multi-label suffixes (e.g. city.state.us, *.s3.amazonaws.com) get a wrong
organizational domain: their DMARC fallback and relaxed alignment may then be misjudged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    PASS,
    SKIP,
    UNKNOWN,
    WARN,
    ascii_int,
    check,
    shown,
)
from ansible_collections.smtp.relay.plugins.module_utils._dns import Resolver
from ansible_collections.smtp.relay.plugins.module_utils._sender.dkim import tag_list

MULTI_LABEL_SUFFIXES = frozenset(
    {
        "co.uk", "org.uk", "ac.uk", "gov.uk", "ltd.uk", "plc.uk", "me.uk", "net.uk", "nhs.uk", "sch.uk",
        "com.au", "net.au", "org.au", "edu.au", "gov.au", "asn.au", "id.au",
        "co.nz", "org.nz", "net.nz", "ac.nz", "govt.nz",
        "co.jp", "ne.jp", "or.jp", "ac.jp", "go.jp",
        "co.kr", "or.kr", "co.in", "net.in", "org.in", "gov.in", "ac.in",
        "co.za", "org.za", "gov.za", "ac.za",
        "com.br", "net.br", "org.br", "gov.br",
        "com.cn", "net.cn", "org.cn", "gov.cn", "edu.cn",
        "com.mx", "org.mx", "gob.mx", "com.ar", "com.tr", "gov.tr", "com.sg", "edu.sg", "gov.sg",
        "com.hk", "com.tw", "co.il", "ac.il", "gov.il", "com.ua", "co.at", "or.at", "ac.at",
        "gv.at", "com.pl", "co.id", "co.th", "ac.th", "com.my", "com.ph", "com.vn",
    }
)  # fmt: skip

POLICIES = ("none", "quarantine", "reject")


def organizational_domain(name: str) -> str:
    labels = name.lower().rstrip(".").split(".")
    take = 3 if ".".join(labels[-2:]) in MULTI_LABEL_SUFFIXES else 2
    return ".".join(labels[-take:])


def aligned(from_domain: str, other: str | None, mode: str) -> bool:
    """RFC 7489 3.1: strict needs the same name, relaxed the same organizational domain."""
    if not other:
        return False
    if mode == "s":
        return from_domain == other
    return organizational_domain(from_domain) == organizational_domain(other)


@dataclass
class DmarcRecord:
    """The policy that applies to one From domain, and where it was found."""

    status: str  # ok | none | invalid | unknown
    found_at: str | None = None
    record: str | None = None
    tags: dict = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    inherited: bool = False  # found at the organizational domain

    def policy_for(self, domain: str) -> str | None:
        if self.status != "ok":
            return None
        if self.inherited and domain != self.found_at:
            return self.tags.get("sp", self.tags.get("p"))
        return self.tags.get("p")

    @property
    def adkim(self) -> str:
        return self.tags.get("adkim", "r")

    @property
    def aspf(self) -> str:
        return self.tags.get("aspf", "r")

    @property
    def pct(self) -> int | None:
        """The percentage the policy applies to (100 when absent); None when the tag is not a valid number."""
        return ascii_int(self.tags.get("pct", "100"))


def parse_record(text: str) -> tuple[dict, list[str]]:
    """Tags of a v=DMARC1 record and the problems that make a receiver ignore it (empty when usable)."""
    tags, problems = {}, []
    parts = tag_list(text)  # RFC 7489 6.4: DKIM's tag-list syntax
    for part, tag, value in parts:
        if tag is None:
            problems.append(f"{part!r} is not tag=value")
            continue
        tags[tag] = value
    if not parts or parts[0][0].replace(" ", "") != "v=DMARC1":
        problems.append("does not start with v=DMARC1")
    if "p" not in tags:
        # RFC 7489 6.6.3: a record without p= but with a valid rua= counts as p=none.
        if "rua" in tags:
            tags["p"] = "none"
        else:
            problems.append("has no p= tag")
    for key in ("p", "sp"):
        if key in tags and tags[key].lower() not in POLICIES:
            problems.append(f"{key}={tags[key]} is not one of {', '.join(POLICIES)}")
        elif key in tags:
            tags[key] = tags[key].lower()
    for key in ("adkim", "aspf"):
        if key in tags and tags[key].lower() not in ("r", "s"):
            problems.append(f"{key}={tags[key]} is not r or s")
        elif key in tags:
            tags[key] = tags[key].lower()
    # RFC 7489 6.3: 1*3DIGIT, ASCII digits only (int() would also read other scripts' digits, or raise).
    if "pct" in tags and (ascii_int(tags["pct"]) is None or ascii_int(tags["pct"]) > 100):
        problems.append(f"pct={shown(tags['pct'])} is not a whole number 0-100 written in ASCII digits")
    return tags, problems


def reporting_addresses(tags: dict, key: str) -> list[str]:
    return [u.strip().split("!")[0] for u in tags.get(key, "").split(",") if u.strip()]


def _records_at(resolver: Resolver, domain: str):
    answer = resolver.query(f"_dmarc.{domain}", "TXT")
    if not answer.answered:
        return None, answer
    return [t for t in answer.texts() if t.lower().replace(" ", "").startswith("v=dmarc1")], answer


def lookup(resolver: Resolver, domain: str) -> DmarcRecord:
    """The record at _dmarc.DOMAIN, else at the organizational domain's (RFC 7489 6.6.3)."""
    org = organizational_domain(domain)
    for where in dict.fromkeys((domain, org)):
        records, answer = _records_at(resolver, where)
        if records is None:
            return DmarcRecord("unknown", where, problems=[f"_dmarc.{where} TXT got no answer ({answer.status})"])
        if len(records) > 1:
            # 6.6.3: more than one record means no DMARC processing at all.
            return DmarcRecord("invalid", where, problems=[f"{len(records)} DMARC records at _dmarc.{where}"])
        if records:
            tags, problems = parse_record(records[0])
            status = "invalid" if problems else "ok"
            return DmarcRecord(status, where, records[0], tags, problems, inherited=where != domain)
    return DmarcRecord("none")


@dataclass(frozen=True)
class Prediction:
    spf_aligned: bool
    dkim_aligned: bool
    spf_pass: bool | None  # None: unknown (DNS did not answer)
    dkim_pass: bool | None

    @property
    def passes(self) -> bool | None:
        if (self.spf_aligned and self.spf_pass) or (self.dkim_aligned and self.dkim_pass):
            return True
        unknown = (self.spf_aligned and self.spf_pass is None) or (self.dkim_aligned and self.dkim_pass is None)
        return None if unknown else False


def predict(
    record: DmarcRecord,
    *,
    from_domain: str,
    envelope_domain: str,
    spf_pass: bool | None,
    dkim_domain: str | None,
    dkim_pass: bool | None,
) -> Prediction:
    """Does a message with this From, this envelope sender and this DKIM d= pass DMARC (RFC 7489 4.2)?"""
    return Prediction(
        spf_aligned=aligned(from_domain, envelope_domain, record.aspf),
        dkim_aligned=aligned(from_domain, dkim_domain, record.adkim),
        spf_pass=spf_pass,
        dkim_pass=dkim_pass if dkim_domain else False,
    )


# --- checks ----------------------------------------------------------------------------------------------------------


def dmarc_checks(resolver, domain, *, envelope, spf_pass, dkim_domain, dkim_pass) -> list[dict]:
    record = lookup(resolver, domain)
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
        "rua": reporting_addresses(tags, "rua"),
        "ruf": reporting_addresses(tags, "ruf"),
    }
    where = f" (inherited from {record.found_at})" if record.inherited else ""
    checks = [
        check("dmarc.record", PASS, f"{domain}: DMARC policy {policy}{where}", "dmarc", record=record.record, **info)
    ]
    prediction = predict(
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
