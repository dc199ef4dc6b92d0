# SPDX-License-Identifier: GPL-3.0-or-later
"""Bugs the generated inputs of test_filter_fuzz.py found in the filters and the planner, one input each.

Each test states the wanted behaviour the fix gave (they were strict xfails until then); test_filter_fuzz.py no
longer tolerates any of them.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings
from ansible_collections.smtp.relay.plugins.filter.allowlist import allowlist_fleet_markdown
from ansible_collections.smtp.relay.plugins.filter.parse_relayhost import parse_relayhost_filter
from ansible_collections.smtp.relay.plugins.filter.relayhost import relayhost_filter
from ansible_collections.smtp.relay.plugins.filter.ses_smtp_password import ses_smtp_password_filter

HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}
KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def refusal(call) -> str:
    with pytest.raises(AnsibleFilterError) as info:
        call()
    return info.value.message


@pytest.mark.parametrize("text", ["false", "no", "0", "off"])
def test_relayhost_mx_lookup_text_means_what_it_says(text):
    assert relayhost_filter({"host": "relay.example.org", "port": 587, "mx_lookup": text}) == "[relay.example.org]:587"


@pytest.mark.parametrize("value", ["maybe", 2])
def test_relayhost_mx_lookup_not_a_boolean_is_refused(value):
    assert "mx_lookup" in refusal(lambda: relayhost_filter({"host": "relay.example.org", "mx_lookup": value}))


@pytest.mark.parametrize(
    "call",
    [
        lambda: relayhost_filter({"host": "relay.example.org", "port": "9" * 4301}),
        lambda: parse_relayhost_filter("[relay.example.org]:" + "1" * 4301),
    ],
    ids=["relayhost", "parse_relayhost"],
)
def test_port_of_4300_digits_is_refused(call):
    assert "port" in refusal(call)


@pytest.mark.parametrize("key", [KEY + "\n", " " + KEY, KEY[:20] + "\n" + KEY[20:]])
def test_ses_key_with_white_space_is_refused(key):
    message = refusal(lambda: ses_smtp_password_filter(key, "eu-west-1"))
    assert "secret access key" in message and KEY[:20] not in message


@pytest.mark.parametrize(
    ("key", "region", "named"), [(KEY + "\udcff", "eu-west-1", "secret access key"), (KEY, ["eu-west-1"], "region")]
)
def test_ses_key_or_region_of_the_wrong_kind_is_refused(key, region, named):
    assert named in refusal(lambda: ses_smtp_password_filter(key, region))


@pytest.mark.parametrize(
    ("request_", "title"),
    [
        ({"fqdn": "a.example.test", "team": "Ops\n| forged | row |"}, "Allowlist"),
        ({"fqdn": "a.example.test", "team": "Ops"}, "Allowlist\n\nMore text"),
    ],
)
def test_fleet_markdown_values_stay_in_their_row(request_, title):
    try:
        text = allowlist_fleet_markdown([request_], title)
    except AnsibleFilterError as e:
        assert "team" in e.message or "title" in e.message
        return
    assert len(text.split("\n")) == 6, text


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"postfix_relay_port": "five"}, "postfix_relay_port"),
        ({"postfix_mode": "open_relay"}, "postfix_mode"),
        ({"postfix_relay_mx_lookup": "maybe"}, "postfix_relay_mx_lookup"),
        ({"postfix_relay_backup_hosts": [{"port": 25}]}, "postfix_relay_backup_hosts"),
    ],
)
def test_planner_refusal_starts_with_the_variable(variables, variable):
    message = refusal(lambda: relay_settings({"postfix_relay_host": "relay.example.org", **variables}, host=HOST))
    assert message.startswith(variable), message


@pytest.mark.parametrize(
    "variables",
    [
        {"postfix_relay_port": "inf"},
        {"postfix_relay_concurrency": "1" * 5000},
        {"postfix_relay_backup_hosts": [{"host": "b.example.org", "port": float("inf")}]},
    ],
    ids=["port-inf", "concurrency-digits", "backup-port-inf"],
)
def test_planner_int_overflow_is_refused(variables):
    message = refusal(lambda: relay_settings({"postfix_relay_host": "relay.example.org", **variables}, host=HOST))
    assert next(iter(variables)) in message


@pytest.mark.parametrize("ca_bundle", ["/etc/ssl/certs/ca.crt\nrelayhost = [evil.example]", "/etc/ssl/\x1b.crt"])
def test_planner_host_facts_with_a_line_break_are_refused(ca_bundle):
    with pytest.raises(AnsibleFilterError):
        relay_settings({"postfix_relay_host": "relay.example.org"}, host={**HOST, "ca_bundle": ca_bundle})
