# SPDX-License-Identifier: GPL-3.0-or-later
"""_checks helpers shared by the checking modules: verdicts, fail_on, option values, CSV cells and lines."""

from __future__ import annotations

import csv
import io
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.module_utils import _checks
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError


def repr_id(value):
    return _checks.shown(value, 30)


def checks(*statuses):
    return [_checks.check(f"c{i}", s, "m") for i, s in enumerate(statuses)]


@pytest.mark.parametrize(
    ("statuses", "worst", "sound"),
    [
        ((), "pass", True),
        (("skip",), "pass", True),
        (("pass", "warn", "skip"), "warn", True),
        (("pass", "unknown", "warn"), "unknown", False),
        (("unknown", "fail", "warn"), "fail", False),
    ],
)
def test_verdict_and_soundness(statuses, worst, sound):
    assert _checks.verdict(checks(*statuses)) == worst
    assert _checks.is_sound(checks(*statuses)) is sound


def test_describe_lists_fail_and_unknown():
    text = _checks.describe(checks("pass", "unknown", "fail"))
    assert text.startswith("1 pass, 1 fail, 1 unknown: ")
    assert "c1 (unknown): m" in text and "c2 (fail): m" in text


@pytest.mark.parametrize(
    ("value", "expected"), [(None, ("fail",)), ([], ()), (["unknown", "fail", "unknown"], ("unknown", "fail"))]
)
def test_fail_on(value, expected):
    assert _checks.fail_on_option(value) == expected


@pytest.mark.parametrize("value", ["fail", ["pass"], ["skip"], [None], 5, {"fail": 1}])
def test_fail_on_refused(value):
    with pytest.raises(SmtpRelayError) as e:
        _checks.fail_on_option(value)
    assert e.value.details["field"] == "fail_on" and e.value.msg.startswith("fail_on:")


@pytest.mark.parametrize(("value", "expected"), [(53, 53), ("53", 53), (" 53 ", 53), (None, 7)])
def test_int_option_accepts(value, expected):
    assert _checks.int_option("n", value, default=7, minimum=0, maximum=65535) == expected


@pytest.mark.parametrize(
    "value",
    [True, 53.0, "\u0665\u0663", "\uff15\uff13", "\xb2", "53.0", "0x35", "1_000", "", "1" * 5000, 2**20000, -1],
    ids=repr_id,
)
def test_int_option_refuses(value):
    with pytest.raises(SmtpRelayError) as e:
        _checks.int_option("dns_port", value, minimum=0, maximum=65535)
    assert e.value.details["field"] == "dns_port" and e.value.msg.startswith("dns_port:")
    assert len(e.value.msg) < 300


@pytest.mark.parametrize(
    "value", [0, -1, math.nan, math.inf, -math.inf, "nan", "inf", "\u0661", "1e400", True, 301, 2**2000], ids=repr_id
)
def test_number_option_refuses(value):
    with pytest.raises(SmtpRelayError) as e:
        _checks.number_option("timeout", value, maximum=300)
    assert e.value.details["field"] == "timeout"


@pytest.mark.parametrize(("value", "expected"), [(0.5, 0.5), (2, 2.0), ("2.5", 2.5), (".5", 0.5), (None, 5.0)])
def test_number_option_accepts(value, expected):
    assert _checks.number_option("timeout", value, default=5.0, maximum=300) == expected


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\tx", "\rx"])
def test_csv_cell_neutralises_formula_triggers(value):
    assert _checks.csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["", "x=1", " =1", "'=1", "#ops", "10.0.0.1", None])
def test_csv_cell_leaves_other_text(value):
    assert _checks.csv_cell(value) == ("" if value is None else value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(max_size=12), min_size=2, max_size=5), min_size=1, max_size=4))
def test_csv_row_round_trips_through_a_csv_reader(rows):
    # Rows of two cells or more, as every writer here has: any text, CR and LF included, stays in its cell.
    width = max(len(r) for r in rows)
    rows = [r + [""] * (width - len(r)) for r in rows]
    text = "".join(_checks.csv_row(r) for r in rows)
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read == [[_checks.csv_cell(c) for c in r] for r in rows]


def test_csv_row_matches_the_csv_module_for_ordinary_values():
    row = ["h1.example.test", "Order mails, invoices", 'say "hi"', "", "[relay]:587", "#ops"]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(row)
    assert _checks.csv_row(row) == buffer.getvalue()
