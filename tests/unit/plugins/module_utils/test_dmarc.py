# SPDX-License-Identifier: GPL-3.0-or-later
"""_sender.dmarc: organizational domain rule, record parsing and discovery, alignment prediction."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._sender import dmarc as _dmarc

from tests.unit.plugins.module_utils.sender_fakes import txt, world_resolver


@pytest.mark.parametrize(
    ("name", "org"),
    [
        ("a.b.sender-ok.org", "sender-ok.org"),
        ("mail.shop.co.uk", "shop.co.uk"),
        ("org", "org"),
        ("x.com.au", "x.com.au"),
    ],
)
def test_organizational_domain(name, org):
    assert _dmarc.organizational_domain(name) == org


def test_parse_record_normalizes_and_validates():
    tags, problems = _dmarc.parse_record("v=DMARC1; p=Reject; adkim=S; rua=mailto:a@x.org,mailto:b@y.org!10m")
    assert not problems
    assert tags["p"] == "reject"
    assert tags["adkim"] == "s"
    assert _dmarc.reporting_addresses(tags, "rua") == ["mailto:a@x.org", "mailto:b@y.org"]
    assert _dmarc.parse_record("v=DMARC1; rua=mailto:a@x.org")[0]["p"] == "none"
    for bad, problem in [("v=DMARC1", "no p="), ("p=reject; v=DMARC1", "v=DMARC1"), ("v=DMARC1; p=drop", "p=drop")]:
        assert any(problem in p for p in _dmarc.parse_record(bad)[1])


def test_lookup_falls_back_to_the_organizational_domain():
    record = _dmarc.lookup(world_resolver(), "sub.parent.org")
    assert record.status == "ok"
    assert record.inherited
    assert record.found_at == "parent.org"
    assert record.policy_for("sub.parent.org") == "reject"
    assert record.adkim == "s"


def test_lookup_statuses():
    assert _dmarc.lookup(world_resolver(), "nothing.org").status == "none"
    two = {("_dmarc.two.org", "TXT"): txt("v=DMARC1; p=none") + txt("v=DMARC1; p=reject")}
    assert _dmarc.lookup(world_resolver(two), "two.org").status == "invalid"
    assert _dmarc.lookup(world_resolver(timeouts=["_dmarc.slow.org"]), "slow.org").status == "unknown"


def test_prediction():
    record = _dmarc.DmarcRecord("ok", "sender-ok.org", tags={"p": "reject", "aspf": "s"})
    relaxed = _dmarc.DmarcRecord("ok", "sender-ok.org", tags={"p": "reject"})
    args = {"from_domain": "sender-ok.org", "dkim_domain": None, "dkim_pass": None}
    assert _dmarc.predict(relaxed, envelope_domain="bounce.sender-ok.org", spf_pass=True, **args).passes
    assert not _dmarc.predict(record, envelope_domain="bounce.sender-ok.org", spf_pass=True, **args).passes
    assert _dmarc.predict(relaxed, envelope_domain="sender-ok.org", spf_pass=None, **args).passes is None
    signed = {**args, "dkim_domain": "sender-ok.org", "dkim_pass": True}
    assert _dmarc.predict(record, envelope_domain="relay-lab.net", spf_pass=True, **signed).passes


@pytest.mark.parametrize(
    "pct",
    ["\u0661\u0660\u0660", "\u0661\u0660", "\uff11\uff10\uff10", "\xb9\u2070\u2070", "\xb2", "101", "-1", "", "50%"],
)
def test_pct_is_ascii_digits_0_to_100(pct):
    # int() reads Arabic-Indic and fullwidth digits and raises on superscripts: none of them is DMARC's DIGIT.
    _unused, problems = _dmarc.parse_record(f"v=DMARC1; p=reject; pct={pct}")
    assert any(p.startswith("pct=") and "ASCII digits" in p for p in problems), problems


@pytest.mark.parametrize(("pct", "value"), [("0", 0), ("100", 100), ("007", 7), (None, 100)])
def test_pct_value(pct, value):
    text = "v=DMARC1; p=reject" + (f"; pct={pct}" if pct is not None else "")
    tags, problems = _dmarc.parse_record(text)
    assert not problems
    assert _dmarc.DmarcRecord("ok", "x.org", text, tags).pct == value
