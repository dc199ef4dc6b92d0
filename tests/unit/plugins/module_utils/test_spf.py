# SPDX-License-Identifier: GPL-3.0-or-later
"""_sender.spf: record lookup, the static walk (lookups, void lookups, include problems), provider includes, pyspf."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._sender import spf as _spf
from ansible_collections.smtp.relay.plugins.module_utils._dns import Resolver
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend


def txt(text):
    return [(text.encode(),)]


def resolver(records, timeouts=()):
    return Resolver(StaticBackend({(n, "TXT") if isinstance(n, str) else n: v for n, v in records.items()}, timeouts))


def test_walk_counts_lookups_across_includes_and_redirects():
    r = resolver(
        {
            "a.org": txt("v=spf1 include:b.org mx a redirect=c.org"),
            "b.org": txt("v=spf1 ip4:192.0.2.1 include:d.org -all"),
            "d.org": txt("v=spf1 exists:%{i}.d.org -all"),
            "c.org": txt("v=spf1 a:c.org -all"),
            ("a.org", "MX"): [(10, "mx.a.org")],
            ("mx.a.org", "A"): ["192.0.2.2"],
            ("a.org", "A"): ["192.0.2.3"],
            ("c.org", "A"): ["192.0.2.4"],
        }
    )
    walked = _spf.walk(r, "a.org")
    # include b, mx, a, redirect c, include d, exists, a:c.org
    assert walked.lookups == 7
    assert walked.void_lookups == 0
    assert walked.macro_terms == 1
    assert walked.includes == ["b.org", "d.org", "c.org"]
    assert not walked.problems


def test_walk_reports_more_than_ten_lookups():
    records = {f"l{i}.org": txt(f"v=spf1 include:l{i + 1}.org -all") for i in range(12)}
    records["l12.org"] = txt("v=spf1 -all")
    walked = _spf.walk(resolver(records), "l0.org")
    assert walked.lookups == 12 > _spf.MAX_LOOKUPS


def test_walk_counts_void_lookups_and_missing_include_records():
    r = resolver({"v.org": txt("v=spf1 a:nx1.v.org mx:nx2.v.org include:nx3.v.org -all")})
    walked = _spf.walk(r, "v.org")
    assert walked.void_lookups == 3
    assert walked.void_names == ["nx1.v.org", "nx2.v.org", "nx3.v.org"]
    assert any("nx3.v.org has no SPF record" in p for p in walked.problems)


def test_walk_stops_on_loops_and_caps_runaway_trees():
    walked = _spf.walk(resolver({"x.org": txt("v=spf1 include:y.org"), "y.org": txt("v=spf1 include:x.org")}), "x.org")
    assert any("loops" in p for p in walked.problems)
    wide = resolver({"w.org": txt("v=spf1 " + " ".join(f"a:h{i}.w.org" for i in range(50)))})
    assert _spf.walk(wide, "w.org").capped


@pytest.mark.parametrize(
    ("records", "status"),
    [
        ({}, "none"),
        ({"d.org": txt("v=spf1 -all") + txt("v=spf1 a -all")}, "multiple"),
        ({"d.org": txt("v=spf1 ip4:1.2.3 -all")}, "syntax"),
        ({"d.org": txt("google-site-verification=x") + txt("v=spf1 -all")}, "ok"),
    ],
)
def test_record_status(records, status):
    assert _spf.walk(resolver(records), "d.org").status == status


def test_unanswered_questions_are_kept_apart():
    walked = _spf.walk(resolver({"d.org": txt("v=spf1 include:slow.org -all")}, timeouts=["slow.org"]), "d.org")
    assert walked.unanswered == ["slow.org"]
    assert walked.void_lookups == 0
    assert _spf.walk(resolver({}, timeouts=["d.org"]), "d.org").status == "unknown"


def test_sends_no_mail_only_for_a_bare_minus_all():
    assert _spf.walk(resolver({"d.org": txt("v=spf1 -all")}), "d.org").sends_no_mail
    assert not _spf.walk(resolver({"d.org": txt("v=spf1 ip4:192.0.2.1 -all")}), "d.org").sends_no_mail


def test_provider_include_matches_the_include_or_its_subdomains():
    walked = _spf.SpfWalk("d.org", includes=["_spf.relay-lab.net", "us-east-1.amazonses.com"])
    assert _spf.provider_included(walked, "amazonses.com")
    assert not _spf.provider_included(walked, "sendgrid.net")


def test_evaluate_uses_our_resolver_and_restores_pyspf_default():
    r = resolver({"d.org": txt("v=spf1 ip4:127.0.1.0/24 -all")})
    assert _spf.evaluate(r, "127.0.1.9", "postmaster@d.org", "d.org")[0] == "pass"
    assert _spf.evaluate(r, "127.0.2.9", "postmaster@d.org", "d.org")[0] == "fail"
    assert _spf.evaluate(Resolver(StaticBackend({}, ["d.org"])), "127.0.1.9", "a@d.org", "d.org")[0] == "temperror"
    assert getattr(_spf._current, "resolver", None) is None
