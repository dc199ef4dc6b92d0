# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters as playbooks use them: filters.yml computes, these tests check what a real run produced."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.peers

HOST = "localhost"


@pytest.fixture(scope="module")
def facts(run_on_controller):
    done = run_on_controller("filters.yml")
    return done, lambda task: done.result(task, HOST)["ansible_facts"]


def test_parse_relayhost_reads_service_names_and_ipv6(facts):
    _run, fact = facts
    assert fact("Parse relayhost values")["parsed"] == [
        {"host": "relay.example.org", "port": 587, "mx_lookup": False, "is_ip": False},
        {"host": "2001:db8::25", "port": 465, "mx_lookup": False, "is_ip": True},
    ]


def test_parse_relayhost_of_nothing_is_an_empty_list(facts):
    _run, fact = facts
    assert fact("Parse relayhost values")["parsed_empty"] == []


def test_relayhost_builds_the_parsed_list_back(facts):
    _run, fact = facts
    assert fact("Build the relayhost back")["built"] == "[relay.example.org]:587, [ipv6:2001:db8::25]:465"


def test_ses_smtp_password_of_the_documented_example_key(facts):
    _run, fact = facts
    password = fact("Derive the SES SMTP password of the documented example key")["ses_password"]
    assert password == "BLBM/9hSUELfq8Gw+rU1YcBjkOxGbhT2XG763xVLGWL9"


def test_plan_of_a_campus_relay_from_string_values(facts):
    _run, fact = facts
    plan = fact("Plan the role's settings for a campus relay")["plan"]
    assert plan["relayhost"] == "[smtp.campus.example.edu]:587"
    assert plan["main_cf"]["inet_interfaces"] == "loopback-only"
    assert plan["main_cf"]["smtp_tls_security_level"] == "secure"
    assert plan["main_cf"]["myhostname"] == "vm.localdomain"


@pytest.mark.parametrize(
    ("index", "value", "says"),
    [
        (0, "[relay.example.org:587]", "port is inside the brackets"),
        (1, "192.0.2.1:25", "without brackets"),
        (2, "[relay.example.org]:0", "outside 1-65535"),
    ],
)
def test_bad_value_fails_with_its_reason(facts, index, value, says):
    done, _fact = facts
    item = done.items("Parse bad relayhost values", HOST)[index]
    assert item["item"] == value
    assert item["failed"], item
    assert re.search(says, item["msg"]), item["msg"]
