# SPDX-License-Identifier: GPL-3.0-or-later
"""postfix_header_checks in the role's one plan, through the role's filter: a regexp table and smtp_header_checks,
bad rules refused naming postfix_header_checks[N]."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings

HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": "/etc/ssl/ca.pem", "packages": ["postfix"]}
RULES = [
    {"pattern": "/^X-Internal-Host:/", "action": "IGNORE"},
    {"pattern": "/^Received: from [^ ]+\\.internal\\.example /", "action": "REPLACE Received: from hidden"},
]


def plan(**variables):
    return relay_settings({"postfix_relay_host": "campus.example.org", "postfix_relay_port": 587, **variables}, HOST)


def refused(**variables) -> str:
    with pytest.raises(AnsibleFilterError) as info:
        plan(**variables)
    return info.value.message


def table(got) -> dict:
    (found,) = [t for t in got["tables"] if t["name"] == "smtp_header_checks"]
    return found


def test_rules_become_a_regexp_table_in_order_and_the_parameter():
    got = plan(postfix_header_checks=RULES)
    assert got["main_cf"]["smtp_header_checks"] == "regexp:/etc/postfix/smtp_header_checks"
    assert table(got) == {"name": "smtp_header_checks", "type": "regexp", "entries": RULES, "state": "present"}


def test_no_rules_remove_the_table_and_the_parameter():
    got = plan()
    assert got["main_cf"]["smtp_header_checks"] is None
    assert table(got) == {"name": "smtp_header_checks", "type": "regexp", "entries": [], "state": "absent"}


def test_the_table_follows_the_config_dir():
    got = relay_settings(
        {"postfix_relay_host": "r.example.org", "postfix_header_checks": RULES}, {**HOST, "config_dir": "/etc/pf2"}
    )
    assert got["main_cf"]["smtp_header_checks"] == "regexp:/etc/pf2/smtp_header_checks"


def test_postfix_main_cf_may_set_the_parameter_only_without_the_variable():
    assert plan(postfix_main_cf={"smtp_header_checks": "regexp:/etc/postfix/mine"})["main_cf"][
        "smtp_header_checks"
    ] == ("regexp:/etc/postfix/mine")
    message = refused(postfix_header_checks=RULES, postfix_main_cf={"smtp_header_checks": "regexp:/x"})
    assert message.startswith("postfix_main_cf.smtp_header_checks: set by the role from postfix_header_checks")


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"pattern": "^X-Internal-Host:", "action": "IGNORE"}, "[1].pattern: '^X-Internal-Host:' must start with a"),
        ({"pattern": "/^X-Internal-Host:", "action": "IGNORE"}, "[1].pattern: '/^X-Internal-Host:' has no closing"),
        ({"pattern": "/x/g", "action": "IGNORE"}, "[1].pattern: '/x/g' has 'g' after the flags; valid flags: i, m, x"),
        ({"pattern": "/x/\n/y/", "action": "IGNORE"}, "[1].pattern: '/x/\\n/y/' contains a line break"),
        ({"pattern": "/x/", "action": "REJECT spam"}, "[1].action: 'REJECT spam' is not an action the SMTP client"),
        ({"pattern": "/x/", "action": "DISCARD"}, "[1].action: 'DISCARD' is not an action"),
        ({"pattern": "/x/", "action": "IGNORE this"}, "[1].action: 'IGNORE this' takes no text after IGNORE"),
        ({"pattern": "/x/", "action": "REPLACE hidden"}, "[1].action: 'REPLACE hidden' needs a header after REPLACE"),
        ({"pattern": "/x/", "action": "PREPEND"}, "[1].action: 'PREPEND' needs a header"),
        ({"pattern": "/x/", "action": "WARN a\nb"}, "[1].action: 'WARN a\\nb' contains a line break"),
        ({"pattern": "/x/", "action": ""}, "[1].action: '' is empty"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule(rule, message):
    got = refused(postfix_header_checks=[RULES[0], rule])
    assert got.startswith("postfix_header_checks" + message), got


@pytest.mark.parametrize(
    "action", ["IGNORE", "ignore", "DUNNO", "WARN", "WARN leaking header", "INFO", "PREPEND X-Relayed: yes"]
)
def test_actions_the_smtp_client_takes_pass(action):
    assert table(plan(postfix_header_checks=[{"pattern": "/^X-A:/", "action": action}]))["state"] == "present"


def test_the_argument_spec_refuses_a_rule_without_pattern_or_with_unknown_fields():
    assert "postfix_header_checks[0].pattern: required" in refused(postfix_header_checks=[{"action": "IGNORE"}])
    got = refused(postfix_header_checks=[{"pattern": "/x/", "action": "IGNORE", "flags": "i"}])
    assert "postfix_header_checks[0].flags: unknown field" in got
