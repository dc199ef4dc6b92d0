# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.sender_check through AnsibleModule, with the DNS seam faked."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._sender import engine as _sender
from ansible_collections.smtp.relay.plugins.modules import sender_check as module

from tests.unit.plugins.module_utils.sender_fakes import world_resolver


@pytest.fixture
def made(monkeypatch):
    """Record the options make_resolver got, and answer from the fake world."""
    calls = []

    def fake(*args):
        calls.append(args)
        return world_resolver()

    monkeypatch.setattr(_sender, "make_resolver", fake)
    return calls


def test_reports_per_domain_and_never_changes(run_module, made):
    result = run_module(
        module.main,
        {
            "addresses": ["noreply@sender-ok.org"],
            "relay_ips": ["127.0.1.9"],
            "nameservers": ["127.0.0.1"],
            "port": 5353,
        },
        check_mode=True,
    )
    assert result["changed"] is False
    assert result["valid"] is True
    assert "sender-ok.org" in result["domains"]
    assert made == [(["127.0.0.1"], 5353, 5.0, 120.0)]


def test_special_use_sender_makes_it_invalid_without_dns(run_module, made):
    # The default fail_on [fail] fails the task, with the whole result; fail_on [] only reports.
    failed = run_module(module.main, {"addresses": ["root@host.example.test"]})
    assert failed["failed"] is True
    assert failed["valid"] is False and failed["verdict"] == "fail"
    assert "domain.special_use" in failed["msg"]
    assert failed["domains"]["host.example.test"]["valid"] is False
    result = run_module(module.main, {"addresses": ["root@host.example.test"], "fail_on": []})
    assert result["valid"] is False
    assert not result.get("failed")
    assert made == []
    checks = result["domains"]["host.example.test"]["checks"]
    assert {"id": "domain.special_use", "status": "fail"}.items() <= next(
        c for c in checks if c["id"] == "domain.special_use"
    ).items()


def test_bad_input_fails_with_the_field(run_module, made):
    result = run_module(module.main, {"domains": ["sender-ok.org"], "relay_ips": ["relay.sender-ok.org"]})
    assert result["failed"]
    assert result["field"] == "relay_ips"
    assert "relay.sender-ok.org" in result["msg"]


def test_needs_a_sender(run_module):
    result = run_module(module.main, {"relay_ips": ["127.0.1.9"]})
    assert result["failed"]
    assert "addresses" in result["msg"]


@pytest.mark.parametrize(("option", "value"), [("dns_port", 0), ("port", 0), ("timeout", 0), ("workers", 0)])
def test_zero_is_refused_naming_the_option_not_replaced(run_module, made, option, value):
    # dns_port 0 used to become 53 and timeout 0 5.0, without a word.
    result = run_module(module.main, {"domains": ["sender-ok.org"], option: value})
    assert result["failed"]
    named = "dns_port" if option == "port" else option
    assert result["field"] == named and result["msg"].startswith(f"{named}:")
    assert made == []


def test_fail_on_unknown_fails_the_task_with_the_result(run_module, monkeypatch):
    monkeypatch.setattr(_sender, "make_resolver", lambda *_a: world_resolver(timeouts=["slow.org"]))
    args = {"domains": ["slow.org"], "relay_ips": ["127.0.1.9"]}
    default = run_module(module.main, args)
    assert not default.get("failed")
    assert default["valid"] is False and default["verdict"] == "unknown"
    strict = run_module(module.main, {**args, "fail_on": ["fail", "unknown"]})
    assert strict["failed"] is True and strict["changed"] is False
    assert strict["verdict"] == "unknown" and "slow.org" in strict["domains"]
    assert "domain.exists (unknown)" in strict["msg"]
    refused = run_module(module.main, {**args, "fail_on": ["pass"]})
    assert refused["failed"] and "fail_on" in refused["msg"]
