# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The RFC 7208 test suite (tests/data/rfc7208-tests.yaml.txt:
rfc7208-tests.yml from pyspf 2.0.14, renamed so that yamllint leaves it as published) against our SPF code.

Each scenario's zone data is loaded into a StaticBackend, and every case runs three ways:
- the evaluation: our Resolver (cache, CNAME following, timeout statuses), the adapter that feeds pyspf, and pyspf's
  check_host();
- our own record selection (spf.fetch_record) and parser (spf_record.parse_record): every record the suite calls a
  syntax error is refused, every other record parses (all SPF records of the zone data too, not only the first one
  a case reads);
- the static walk behind the spf.* checks: a case fails one of those checks exactly when the suite expects a
  permerror.
The few places where we differ from the suite on purpose are listed below, each with its reason.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL
from ansible_collections.smtp.relay.plugins.module_utils._dns import Answer, Resolver
from ansible_collections.smtp.relay.plugins.module_utils._sender import spf as _spf
from ansible_collections.smtp.relay.plugins.module_utils._sender.spf_checks import spf_checks
from ansible_collections.smtp.relay.plugins.module_utils._sender.spf_record import parse_record, spf_records
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend

SUITE = Path(__file__).resolve().parents[3] / "data" / "rfc7208-tests.yaml.txt"


class SuiteBackend(StaticBackend):
    """The suite's DNS conventions (as its driver testspf.py reads them).

    A bare 'TIMEOUT' entry makes every type that has no data listed before it time out; 'TYPE: TIMEOUT' makes
    that type time out; unknown names under error. time out.
    """

    def __init__(self, zonedata):
        records, timeouts, names = {}, set(), set()
        self.bare_timeouts = {}
        for raw_name, entries in zonedata.items():
            name = raw_name.lower()
            names.add(name)
            has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
            answered_types = set()
            for entry in entries:
                if entry == "TIMEOUT":
                    self.bare_timeouts[name] = set(answered_types)
                    break
                ((rtype, value),) = entry.items()
                if value == "TIMEOUT":
                    timeouts.add((name, rtype))
                    continue
                if value == "NONE":
                    continue
                answered_types.add(rtype)
                # Type SPF is gone in RFC 7208; the suite's drivers publish such data as TXT when no TXT is given.
                if rtype == "SPF":
                    if has_txt:
                        continue
                    rtype = "TXT"
                records.setdefault((name, rtype), []).append(_value(rtype, value))
        super().__init__(records, timeouts)
        self.names |= names

    def lookup(self, name, rdtype, timeout):
        key = name.lower()
        if key in self.bare_timeouts and rdtype not in self.bare_timeouts[key]:
            return Answer(name, rdtype, "timeout", error="suite: TIMEOUT entry")
        if key.startswith("error.") and key not in self.names:
            return Answer(name, rdtype, "timeout", error="suite: error. name")
        return super().lookup(name, rdtype, timeout)


def _value(rtype, value):
    if rtype == "TXT":
        strings = [value] if isinstance(value, str) else value
        return tuple(s.encode() for s in strings)
    if rtype == "MX":
        return (value[0], value[1].rstrip("."))
    if rtype == "AAAA":
        return str(ipaddress.ip_address(value))
    return value


def _scenarios():
    with SUITE.open(encoding="utf-8") as fh:
        return list(yaml.safe_load_all(fh))


SCENARIOS = _scenarios()
CASES = [
    (test_id, index, test) for index, scenario in enumerate(SCENARIOS) for test_id, test in scenario["tests"].items()
]


def _params():
    return [pytest.param(test_id, SCENARIOS[index]["zonedata"], test, id=test_id) for test_id, index, test in CASES]


def _resolver(zonedata) -> Resolver:
    return Resolver(SuiteBackend(zonedata), timeout=1)


def _expected(test) -> list[str]:
    return test["result"] if isinstance(test["result"], list) else [test["result"]]


def _domain(test) -> str:
    """Where check_host() starts: the MAIL FROM domain, or the HELO name when MAIL FROM has none (RFC 7208 2.4)."""
    return test["mailfrom"].rpartition("@")[2] or test["helo"]


@pytest.mark.parametrize(("test_id", "zonedata", "test"), _params())
def test_rfc7208_suite(test_id, zonedata, test):
    result, _explanation = _spf.evaluate(_resolver(zonedata), test["host"], test["mailfrom"], test["helo"])
    assert result in _expected(test), f"{test_id}: {test.get('description')}"


# --- the same cases through our own record selection and parser ---------------------------------------------------

# Cases the suite answers with permerror although the record read first is well formed: the error is in other
# records, in the DNS data or in the limits (the static walk finds them: see the last test).
NOT_SYNTAX = {
    "multitxt1": "two SPF records at the name",
    "multitxt2": "two SPF records at the name",
    "multispf1": "two SPF records at the name",
    "include-permerror": "the included record has the syntax error",
    "include-none": "the included name has no SPF record",
    "redirect-none": "the redirect target has no SPF record",
    "redirect-loop": "the redirect loops until the lookup limit",
    "include-loop": "the include loops until the lookup limit",
    "mx-limit": "more than 10 MX names",
    "mech-over-limit": "more than 10 DNS-querying terms",
    "include-over-limit": "more than 10 DNS-querying terms across the include",
    "void-over-limit": "more than 2 void lookups",
    "invalid-domain-long-via-macro": "valid syntax; the suite allows permerror for the over-long name %{H} expands to",
}
# Valid domain-specs by the RFC's grammar (the suite accepts fail or permerror), refused by our parser on purpose:
# a literal name with an empty or over-long label can never exist, so the record owner should hear about it.
REFUSED_THOUGH_VALID = {
    "invalid-domain-empty-label": "a:mail.example...com has an empty label",
    "invalid-domain-long": "a:a123...123.example.com has a label of 64 octets",
}
# What our record selection reports when no single record is read, and the suite's result for it.
SELECTION = {"none": "none", "unknown": "temperror", "multiple": "permerror"}


def _syntax_error(test_id, test) -> bool:
    """Does the suite say the record read first is malformed (or do we refuse it on purpose)?"""
    return test_id in REFUSED_THOUGH_VALID or ("permerror" in _expected(test) and test_id not in NOT_SYNTAX)


def test_the_lists_of_differences_name_cases_of_the_suite():
    by_id = {test_id: test for test_id, _index, test in CASES}
    assert set(NOT_SYNTAX) | set(REFUSED_THOUGH_VALID) <= set(by_id)
    assert all("permerror" in _expected(by_id[i]) for i in (*NOT_SYNTAX, *REFUSED_THOUGH_VALID))


@pytest.mark.parametrize(("test_id", "zonedata", "test"), _params())
def test_rfc7208_records_through_our_parser(test_id, zonedata, test):
    status, record, _detail = _spf.fetch_record(_resolver(zonedata), _domain(test))
    if status != "ok":
        assert SELECTION[status] in _expected(test)
        assert not _syntax_error(test_id, test)
        return
    if _syntax_error(test_id, test):
        with pytest.raises(ValueError):
            parse_record(record)
    else:
        parse_record(record)


def test_how_many_rfc7208_cases_reach_our_parser():
    reached = syntax = 0
    for test_id, index, test in CASES:
        status, _record, _detail = _spf.fetch_record(_resolver(SCENARIOS[index]["zonedata"]), _domain(test))
        reached += status == "ok"
        syntax += status == "ok" and _syntax_error(test_id, test)
    assert (len(CASES), reached, syntax) == (203, 189, 65)


def _zone_records():
    """Every SPF record in the suite's zone data, with whether a syntax case of its scenario reads it first."""
    for index, scenario in enumerate(SCENARIOS):
        malformed = {
            _domain(test).lower() for test_id, test in scenario["tests"].items() if _syntax_error(test_id, test)
        }
        for name, entries in scenario["zonedata"].items():
            for number, entry in enumerate(e for e in entries if isinstance(e, dict)):
                ((rtype, value),) = entry.items()
                text = "".join(value) if isinstance(value, list) and rtype in ("TXT", "SPF") else value
                if rtype in ("TXT", "SPF") and isinstance(text, str) and spf_records([text]):
                    yield pytest.param(text, name.lower() in malformed, id=f"{index}-{name}-{number}")


ZONE_RECORDS = list(_zone_records())


def test_the_zone_data_holds_the_records_we_expect():
    assert len(ZONE_RECORDS) == 197


@pytest.mark.parametrize(("record", "malformed"), ZONE_RECORDS)
def test_every_zone_record_parses_unless_a_syntax_case_reads_it(record, malformed):
    if malformed:
        with pytest.raises(ValueError):
            parse_record(record)
    else:
        parse_record(record)


# --- the static walk behind the spf.* checks ------------------------------------------------------------------------

# The walk judges a domain for every client IP at once, the suite one client IP at a time.
WALK_DIFFERS = {
    "include-at-limit": "passes because its first term matches the client; for any other IP the mx is lookup 11",
    "invalid-domain-long-via-macro": "the over-long name depends on the HELO name; no walk can know it",
}


@pytest.mark.parametrize(("test_id", "zonedata", "test"), _params())
def test_rfc7208_permerrors_fail_an_spf_check(test_id, zonedata, test):
    walked = _spf.walk(_resolver(zonedata), _domain(test))
    failed = {c["id"] for c in spf_checks(walked) if c["status"] == FAIL} - {"spf.sends_no_mail"}
    permerror = "permerror" in _expected(test)
    assert bool(failed) == (not permerror if test_id in WALK_DIFFERS else permerror), failed
