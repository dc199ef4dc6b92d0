# SPDX-License-Identifier: GPL-3.0-or-later
"""Generated bad input for sender_check and allowlist_request: accepted, or refused naming the option; never a crash.

Each input goes through the module's main() (Ansible's argument spec first, as users reach it) and straight into
the module_utils function (any Python value, as other callers reach it), with fakes behind the DNS and host seams.
SMTP_RELAY_FUZZ_EXAMPLES sets the number of inputs per test (default 150); the counts tried are printed with -s.
"""

from __future__ import annotations

import contextlib
import csv
import decimal
import functools
import io
import json
import os
import shutil
import tempfile
from unittest import mock

import pytest
from ansible.module_utils.testing import patch_module_args
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.module_utils._allowlist import request as _allowlist

from ansible_collections.smtp.relay.plugins.module_utils._sender import engine as _sender
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.modules import allowlist_request, sender_check

from tests.unit.plugins.module_utils.allowlist_fakes import ROUTES, FakeHost, dns_ok
from tests.unit.plugins.module_utils.sender_fakes import world_resolver

EXAMPLES = int(os.environ.get("SMTP_RELAY_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    derandomize=os.environ.get("SMTP_RELAY_FUZZ_RANDOM") is None,
)
TRIED: dict[str, int] = {}

SPECIAL = [
    "", " ", "\n", "\r", "\t", "\x00", "\x7f", "\x85", "\u2028", "\u2029", "\u200b", "\ufeff", "\u202e",
    "\u0661\u0660\u0660", "\u0665\u0663", "\uff15\uff13", "\xb2", "\xb9\u2070\u2070",
    "-1", "0", "00", "+5", "1e309", "nan", "inf", "-inf", "0x35", "1_000",
    "=1+1", "+1", "-1+1", "@SUM(A1)", "\t=1", "\r=1", "'", '"', ",", ";", "%", "%{d}", "*.", "*.x.org", "..",
    "127.0.0.1", "0.0.0.0", "0.0.0.0/0", "::/0", "::", "::1", "::ffff:127.0.0.1", "::ffff:0:0/96", "fe80::1%eth0",
    "10.0.0.0/8", "93.184.216.0/24", "2a00:1450:4001::/48", "224.0.0.1", "169.254.1.1", "10.0.0.1/8",
    "sender-ok.org", "null-mx.org", "sub.parent.org", "bücher.example", "xn--bcher-kva.example", "test.com",
    "a@sender-ok.org", "<a@sender-ok.org>", '"a b"@sender-ok.org', "é@sender-ok.org", "a@b@sender-ok.org",
    "[smtp.relay-lab.net]:587", "smtp.relay-lab.net:0", "[ipv6:::1]:25", "relay.example.test",
    "[x]:\u0665\u0668\u0667",
    "h1.example.test", "h1.example.test.", "-bad.example.org", "a" * 64 + ".org", "ops@example.org", "#ops",
]  # fmt: skip
huge = st.integers(min_value=300, max_value=200_000).flatmap(
    lambda n: st.sampled_from(["a", "\u0661", "\u2028", "x.", "=", "1"]).map(lambda c: c * n)
)
odd_text = st.one_of(
    st.sampled_from(SPECIAL),
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    st.builds(lambda a, b, c: a + b + c, st.sampled_from(SPECIAL), st.sampled_from(SPECIAL), st.text(max_size=3)),
    huge,
)
odd_number = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 53, 65535, 65536, 2**31, 5.5, 0.0, -0.0, 1e-300, 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    odd_text,
)
odd_list = st.one_of(st.lists(odd_text, max_size=4), odd_text)
anything = st.one_of(
    st.none(), odd_number, odd_list, st.dictionaries(st.text(max_size=3), odd_text, max_size=2), st.lists(odd_number)
)

SENDER_OPTIONS = {
    "addresses": odd_list,
    "domains": odd_list,
    "allowed_domains": odd_list,
    "rewrite_domain": odd_text,
    "envelope_domain": odd_text,
    "relay_ips": odd_list,
    "relay_host": odd_text,
    "provider": st.sampled_from(["ses", "sendgrid", "mailgun", "office365", "google_relay", "gmail", "custom"]),
    "dkim_selectors": odd_list,
    "dkim_domain": odd_text,
    "nameservers": odd_list,
    "dns_port": odd_number,
    "timeout": odd_number,
    "deadline": odd_number,
    "workers": odd_number,
    "fail_on": st.one_of(st.lists(st.sampled_from(["fail", "warn", "unknown"]), max_size=3), odd_list),
}
SENDER_PLAUSIBLE = {
    "addresses": [["a@sender-ok.org"], ["b@null-mx.org", "c@sub.parent.org"], ["x@gone.org"]],
    "domains": [["sender-ok.org"], ["test.com", "sub.parent.org"], ["b\u00fccher.example"]],
    "allowed_domains": [["sender-ok.org", "*.parent.org"], ["*.sender-ok.org"]],
    "rewrite_domain": ["relay-lab.net"],
    "envelope_domain": ["relay-lab.net", "sender-ok.org"],
    "relay_ips": [["127.0.1.25"], ["127.0.1.9", "::1"]],
    "relay_host": ["[smtp.relay-lab.net]:587", "smtp.relay-lab.net"],
    "dkim_selectors": [["s1"], ["s1", "k"]],
    "dkim_domain": ["sender-ok.org"],
    "nameservers": [["127.0.0.1"], ["::1"]],
    "dns_port": [53, 5353, "5353"],
    "timeout": [1, 2.5, "2"],
    "deadline": [10, 120.0],
    "workers": [1, 4],
}
SENDER_OPTIONS = {
    name: st.one_of(st.sampled_from(SENDER_PLAUSIBLE[name]), odd) if name in SENDER_PLAUSIBLE else odd
    for name, odd in SENDER_OPTIONS.items()
}
SENDER_BASE = {"domains": ["sender-ok.org", "null-mx.org"], "addresses": ["a@sub.parent.org"], "fail_on": []}

ALLOWLIST_OPTIONS = {
    "fqdn": odd_text,
    "purpose": odd_text,
    "ipv4": odd_list,
    "ipv6": odd_list,
    "egress": odd_list,
    "team": odd_text,
    "contact": odd_text,
    "monitoring": odd_text,
    "relay_host": odd_text,
    "relay_public": st.one_of(st.booleans(), odd_text),
    "prefer_ipv6": st.one_of(st.booleans(), odd_text),
    "format": st.sampled_from(["mail", "markdown", "json", "yaml", "csv"]),
    "subject": odd_text,
    "dest": odd_text,
    "evidence": st.booleans(),
    "max_package_list_age": odd_number,
    "nameservers": odd_list,
    "dns_port": odd_number,
    "timeout": odd_number,
    "report_only": st.booleans(),
    "fail_on": st.one_of(st.lists(st.sampled_from(["fail", "warn", "unknown"]), max_size=3), odd_list),
}
ALLOWLIST_PLAUSIBLE = {
    "fqdn": ["h1.example.test", "H1.Example.Test."],
    "purpose": ["Order mails", "=1+1 | invoices"],
    "ipv4": [["10.89.0.11"], ["93.184.216.0/24"], []],
    "ipv6": [["fd00::11"], ["2a00:1450:4001::/48"]],
    "egress": [["93.184.215.14", "2a00:1450:4001::25"]],
    "team": ["Shop", "=SUM(A1)", "-Ops"],
    "contact": ["#ops", "ops@example.org", "slack:#mail-ops"],
    "monitoring": ["Zabbix", "@oncall"],
    "relay_host": ["relay.example.test", "[relay.example.test]:587", "10.89.100.2"],
    "subject": ["Allowlist h1"],
    "dest": ["request.txt", "request.csv"],
    "max_package_list_age": [0, 7, "30"],
    "nameservers": [["192.0.2.53"]],
    "dns_port": [53, 5353],
    "timeout": [1.0, 2],
}
ALLOWLIST_OPTIONS = {
    name: st.one_of(st.sampled_from(ALLOWLIST_PLAUSIBLE[name]), odd) if name in ALLOWLIST_PLAUSIBLE else odd
    for name, odd in ALLOWLIST_OPTIONS.items()
}
ALLOWLIST_BASE = {
    "purpose": "Order mails",
    "team": "Shop",
    "contact": "shop-ops@example.org",
    "relay_host": "[relay.example.test]:587",
    "report_only": True,
}


@functools.cache
def _dest_dir() -> str:
    """The directory generated dest files go to, made on first use: importing this file (test_option_fuzz_postfix.py
    does, for its strategies) or skipping its tests leaves no directory behind."""
    return tempfile.mkdtemp(prefix="smtp-relay-fuzz-")


def _inside(dest) -> str | None:
    """Keep generated file names inside _dest_dir() (no separators, no variables for Ansible's path type to expand)."""
    if not isinstance(dest, str):
        return dest
    return os.path.join(_dest_dir(), dest.replace("/", "_").replace("$", "_").replace("~", "_") or "_")


INT_OPTIONS = ("dns_port", "workers", "max_package_list_age")


def _crashes_ansible_core(value) -> bool:
    """Values ansible-core's own int conversion crashes on, before any module code runs (upstream bugs).

    check_type_int turns "inf" (or a float infinity) into an OverflowError it does not catch, and a string of more
    than 4300 digits (any script's: it goes through Decimal) into an int that logging the invocation cannot print.
    """
    if not isinstance(value, str | float):
        return False
    try:
        number = decimal.Decimal(value)
    except (decimal.DecimalException, ValueError, TypeError):
        return False
    return number.is_infinite() or (
        number.is_finite() and len(number.as_tuple().digits) + number.as_tuple().exponent > 4000
    )


def _args(base, options, data, module=False):
    chosen = data.draw(st.sets(st.sampled_from(sorted(options)), max_size=5), label="options")
    args = dict(base)
    for name in sorted(chosen):
        value = data.draw(options[name], label=name)
        if module and name in INT_OPTIONS and _crashes_ansible_core(value):
            continue  # reported upstream; the function-level tests below do take these values
        args[name] = value
    return args


def _run_main(main, args) -> dict:
    out = io.StringIO()
    args = {**args, "_ansible_check_mode": False, "_ansible_diff": True}
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main()
    return json.loads(out.getvalue())


def _names_an_option(result: dict, args: dict, options) -> bool:
    msg = result.get("msg", "")
    named = {result.get("field"), *(n for n in [*options, "port"] if n in msg)}
    return bool(named & {*options, "port"}) and "Traceback" not in msg


def _count(name: str, outcome: str = "tried") -> None:
    key = f"{name}: {outcome}"
    TRIED[key] = TRIED.get(key, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    if _dest_dir.cache_info().currsize:
        shutil.rmtree(_dest_dir(), ignore_errors=True)
        _dest_dir.cache_clear()
    print("\ngenerated inputs tried:", json.dumps(TRIED, sort_keys=True))


@FUZZ
@given(data=st.data())
def test_sender_check_module_options(data):
    args = _args(SENDER_BASE, SENDER_OPTIONS, data, module=True)
    _count("sender_check module")
    with mock.patch.object(_sender, "make_resolver", lambda *_a: world_resolver()):
        result = _run_main(sender_check.main, args)
    _count("sender_check module", "failed on a check" if "domains" in result and result.get("failed") else
           "refused" if result.get("failed") else "accepted")  # fmt: skip
    if result.get("failed"):
        # Refused by Ansible's argument spec or by ours, naming the option; or failed by a check (fail_on).
        assert "domains" in result or _names_an_option(result, args, SENDER_OPTIONS), result
    else:
        assert result["changed"] is False and result["verdict"] in ("pass", "warn", "unknown", "fail")
        assert result["valid"] is (result["verdict"] in ("pass", "warn"))


@FUZZ
@given(data=st.data())
def test_sender_check_function_with_any_python_value(data):
    args = _args(SENDER_BASE, {name: st.one_of(values, anything) for name, values in SENDER_OPTIONS.items()}, data)
    _count("sender_check function")
    try:
        result = _sender.check_senders(args, world_resolver())
    except SmtpRelayError as e:
        _count("sender_check function", "failed on a check" if "domains" in e.details else "refused")
        assert e.details.get("field") in SENDER_OPTIONS or "domains" in e.details, (e.msg, e.details)
        assert "domains" in e.details or e.details["field"] in e.msg
    else:
        _count("sender_check function", "accepted")
        assert result["valid"] is (result["verdict"] in ("pass", "warn"))


@FUZZ
@given(data=st.data())
def test_allowlist_request_module_options(data):
    args = _args(ALLOWLIST_BASE, ALLOWLIST_OPTIONS, data, module=True)
    if "dest" in args:
        args["dest"] = _inside(args["dest"])
    _count("allowlist_request module")
    with (
        mock.patch.object(allowlist_request, "HostInfo", lambda **_kw: FakeHost(routes=ROUTES)),
        mock.patch.object(_allowlist, "make_resolver", lambda *_a: dns_ok()),
    ):
        result = _run_main(allowlist_request.main, args)
    _count("allowlist_request module", "failed on a check" if "checks" in result and result.get("failed") else
           "refused" if result.get("failed") else "accepted")  # fmt: skip
    if result.get("failed"):
        assert "checks" in result or _names_an_option(result, args, ALLOWLIST_OPTIONS), result
    else:
        assert result["verdict"] in ("pass", "warn", "unknown", "fail")
        assert "\u2028" not in result["rendered"].replace(args.get("subject", ""), "")
        if result["rendered"].startswith("fqdn,"):
            rows = list(csv.reader(io.StringIO(result["rendered"], newline="")))
            assert len(rows) == 2 and all(len(row) == len(rows[0]) for row in rows)
            assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in rows[1])


@FUZZ
@given(data=st.data())
def test_allowlist_request_function_with_any_python_value(data):
    args = _args(
        ALLOWLIST_BASE, {name: st.one_of(values, anything) for name, values in ALLOWLIST_OPTIONS.items()}, data
    )
    if "dest" in args:
        args["dest"] = _inside(args["dest"])
    _count("allowlist_request function")
    try:
        result = _allowlist.allowlist_request(args, FakeHost(routes=ROUTES), dns_ok())
    except SmtpRelayError as e:
        _count("allowlist_request function", "failed on a check" if "checks" in e.details else "refused")
        assert e.details.get("field") in ALLOWLIST_OPTIONS or "checks" in e.details, (e.msg, e.details)
        assert "checks" in e.details or e.details["field"] in e.msg
    else:
        _count("allowlist_request function", "accepted")
        assert result["valid"] is (result["verdict"] in ("pass", "warn"))
