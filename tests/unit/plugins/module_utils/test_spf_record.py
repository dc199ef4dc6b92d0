# SPDX-License-Identifier: GPL-3.0-or-later
"""_sender.spf_record: the SPF record grammar (the RFC 7208 suite's records run through it in test_spf_rfc7208.py)."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._sender.spf_record import Term, parse_record, spf_records


@pytest.mark.parametrize(
    "record",
    [
        "v=spf1 -all",
        "v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24 a:mail.org//64 ~all",
        "v=spf1 include:_spf.relay-lab.net redirect=other.org",
        "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} -all",
        "v=spf1 ?ptr:relay-lab.net foo=bar",
        "v=spf1 a:mail.example.1-2 -all",  # toplabel: an inner hyphen makes digits a label
        "v=spf1 a:%{d}.example.org. mx:%{d2} -all",
        "v=spf1 a/0 a//0 ip4:192.0.2.1/0 ip6:::1/128 -all",
        "V=SPF1  a  -all ",  # names are case-insensitive; terms are separated by one or more spaces
    ],
)
def test_valid_records_parse(record):
    terms, _unused = parse_record(record)
    assert terms and all(t.qualifier in "+-~?" for t in terms)


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        ("v=spf1 ip4:192.0.2.300 -all", "ip4"),
        ("v=spf1 ip6:192.0.2.1 -all", "ip6"),
        ("v=spf1 ip6:fe80::1%eth0 -all", "ip6"),
        ("v=spf1 include -all", "domain is required"),
        ("v=spf1 moo -all", "unknown mechanism"),
        ("v=spf1 a/33", "CIDR"),
        ("v=spf1 redirect=a.org redirect=b.org", "twice"),
        ("v=spf1 include:%{z}.org", "macro"),
        ("v=spf1 all:x", "no argument"),
        # found by running the RFC 7208 suite's records through the parser:
        ("v=spf1 a:mail.org\t-all", "U\\+0009"),
        ("v=spf1 a:m\u00e4il.org -all", "U\\+00E4"),
        ("v=spf1 a: -all", "domain is required"),
        ("v=spf1 mx:/24 -all", "domain is required"),
        ("v=spf1 ptr: -all", "domain is required"),
        ("v=spf1 ip4:192.0.2.0/024 -all", "CIDR"),
        ("v=spf1 a//064 -all", "CIDR"),
        ("v=spf1 foo=%abc -all", "macro"),
        ("v=spf1 exp=%{r}.example.org -all", "macro"),
        ("v=spf1 exists:%{c}.example.org -all", "macro"),
        ("v=spf1 a:%{d}.123 -all", "top-level label"),
        ("v=spf1 a:%{d}org -all", "top-level label"),
        ("v=spf1 a/24x -all", "not a CIDR length"),
        ("v=spf1 a:mail.org.. -all", "not a domain name"),
        ("spf1 -all", "v=spf1"),
    ],
)
def test_bad_records_name_the_term(record, problem):
    with pytest.raises(ValueError, match=problem):
        parse_record(record)


def test_terms_and_modifiers():
    terms, modifiers = parse_record("v=spf1 -a:%{d}.org/24//64 ~mx exp=why.org Unknown.Name=%{l}")
    assert terms == [Term("-", "a", "%{d}.org", 24, 64), Term("~", "mx", None)]
    assert terms[0].has_macro and not terms[1].has_macro
    assert modifiers == {"exp": "why.org", "unknown.name": "%{l}"}


def test_a_modifier_may_carry_a_mechanism_name():
    # name "=" macro-string is a modifier whatever the name (RFC 7208 A); receivers ignore unknown ones.
    assert parse_record("v=spf1 ip4=192.0.2.1 -all")[1] == {"ip4": "192.0.2.1"}


def test_record_selection():
    texts = ["google-site-verification=x", "v=spf1 -all", "V=SPF1", "v=spf10 -all", "v=spf1\t-all"]
    assert spf_records(texts) == ["v=spf1 -all", "V=SPF1"]
    # Case-insensitive in ASCII only: Unicode case folding would take the long s (U+017F) for an s.
    assert spf_records(["v=\u017fpf1 -all"]) == []


@pytest.mark.parametrize(
    "record", ["v=spf1 a/\u0662\u0664 -all", "v=spf1 mx:x.org/\uff12\uff14 -all", "v=spf1 a//\uff16\uff14 -all"]
)
def test_cidr_lengths_are_ascii_digits(record):
    # \d took other scripts' digits and int() read them: Arabic-Indic 24 was taken as /24; receivers see a permerror.
    with pytest.raises(ValueError):
        parse_record(record)
