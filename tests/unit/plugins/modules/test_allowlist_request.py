# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.allowlist_request through AnsibleModule, with the host and DNS seams faked."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.smtp.relay.plugins.module_utils._allowlist import request as _allowlist
from ansible_collections.smtp.relay.plugins.module_utils._optional import OptionalLibrary
from ansible_collections.smtp.relay.plugins.modules import allowlist_request as module

from tests.unit.plugins.module_utils.allowlist_fakes import ROUTES, FakeHost, dns_ok

MAKE_RESOLVER = _allowlist.make_resolver
ARGS = {
    "purpose": "Order mails",
    "team": "Shop",
    "contact": "shop-ops@example.org",
    "relay_host": "[relay.example.test]:587",
}


@pytest.fixture(autouse=True)
def fakes(monkeypatch):
    """The host and the resolver every run gets; a test may replace ``fakes.resolver``."""
    faked = SimpleNamespace(host=FakeHost(routes=ROUTES), resolver=dns_ok())
    monkeypatch.setattr(module, "HostInfo", lambda **_kw: faked.host)
    monkeypatch.setattr(_allowlist, "make_resolver", lambda *_a: faked.resolver)
    return faked


def test_returns_request_rendering_and_checks(run_module):
    result = run_module(module.main, {**ARGS, "format": "csv"})
    assert not result.get("failed")
    assert result["changed"] is False
    assert result["request"]["ipv4"] == ["10.89.0.11"]
    assert result["rendered"].startswith("fqdn,purpose,ipv4,ipv6,")
    assert result["mail"]["subject"] == "Email sending: allowlist server"
    assert result["valid"] is True
    assert all({"id", "status", "field", "message"} <= set(c) for c in result["checks"])


def test_dest_written_once_then_unchanged_check_mode_writes_nothing(run_module, tmp_path):
    dest = tmp_path / "request.txt"
    args = {**ARGS, "dest": str(dest), "subject": "Allowlist h1"}
    result = run_module(module.main, args, check_mode=True, diff=True)
    assert result["changed"] is True and not dest.exists()
    assert result["diff"]["after"].startswith("Subject: Allowlist h1\n")
    assert run_module(module.main, args)["changed"] is True
    assert dest.read_text() == result["rendered"]
    second = run_module(module.main, args, diff=True)
    assert second["changed"] is False and "diff" not in second


def test_failed_check_fails_with_checks_unless_report_only(run_module, fakes):
    fakes.resolver = dns_ok(forward={"h1.example.test": ["10.89.0.99", "fd00::11"]})
    result = run_module(module.main, ARGS)
    assert result["failed"] is True
    assert "fqdn.forward_mismatch" in result["msg"]
    assert any(c["id"] == "fqdn.forward_mismatch" for c in result["checks"])
    assert result["valid"] is False
    reported = run_module(module.main, {**ARGS, "report_only": True})
    assert not reported.get("failed") and reported["valid"] is False


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"fqdn": "not a name"}, ["fqdn", "not a name"]),
        ({"ipv4": ["10.0.0.300"]}, ["ipv4", "10.0.0.300"]),
        ({"ipv6": ["fd00::zz"]}, ["ipv6", "fd00::zz"]),
        ({"team": None}, ["team"]),
        ({"contact": None}, ["contact"]),
        ({"contact": "someone"}, ["contact", "mail address", "channel"]),
        ({"format": "pdf"}, ["format", "pdf"]),
    ],
)
def test_bad_input_refused_naming_the_field(run_module, fakes, args, words):
    result = run_module(module.main, {**ARGS, **args})
    assert result["failed"] is True
    assert all(w in result["msg"] for w in words), result["msg"]
    assert fakes.host.calls == []


def test_nameservers_need_dnspython(run_module, monkeypatch, fakes):
    try:
        __import__("smtp_relay_no_such_library")
    except ImportError:
        monkeypatch.setattr(_allowlist, "DNSPYTHON", OptionalLibrary.missing("dnspython", "python3-dnspython"))
    monkeypatch.setattr(_allowlist, "make_resolver", MAKE_RESOLVER)
    result = run_module(module.main, {**ARGS, "nameservers": ["127.0.0.1"]})
    reason = "to query the DNS servers given in nameservers"
    assert result["failed"] is True
    assert result["msg"] == missing_required_lib("dnspython", reason=reason) + ". Debian package: python3-dnspython"
    assert result["missing_library"] == "dnspython"
    assert fakes.host.calls == [], "refused before the host is asked anything"


def test_world_granting_request_fails_even_with_report_only(run_module, tmp_path):
    dest = tmp_path / "request.csv"
    for args in ({"ipv4": ["0.0.0.0/0"]}, {"ipv6": ["::ffff:127.0.0.1"]}, {"egress": ["10.0.0.0/8"]}):
        result = run_module(module.main, {**ARGS, **args, "report_only": True, "dest": str(dest), "format": "csv"})
        assert result["failed"] is True, result
        assert result["checks"][0]["status"] == "fail"
        assert "rendered" not in result
        assert not dest.exists()


def test_unknown_is_not_valid_and_fail_on_unknown_fails(run_module, fakes):
    fakes.resolver = dns_ok(broken={"h1.example.test"})
    result = run_module(module.main, ARGS)
    assert not result.get("failed")
    assert result["valid"] is False and result["verdict"] == "unknown"
    strict = run_module(module.main, {**ARGS, "fail_on": ["unknown"]})
    assert strict["failed"] is True and strict["verdict"] == "unknown"
    assert strict["request"]["fqdn"] == "h1.example.test" and strict["checks"]


def test_csv_and_latin1_dest(run_module, tmp_path):
    dest = tmp_path / "request.csv"
    dest.write_bytes(b"\xe9t\xe9\n")
    result = run_module(module.main, {**ARGS, "team": "=SUM(A1:A9)", "format": "csv", "dest": str(dest)}, diff=True)
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True
    assert ",'=SUM(A1:A9)," in dest.read_text()


def test_port_zero_refused(run_module):
    result = run_module(module.main, {**ARGS, "nameservers": ["192.0.2.53"], "dns_port": 0})
    assert result["failed"] and result["field"] == "dns_port"
