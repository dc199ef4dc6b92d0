# SPDX-License-Identifier: GPL-3.0-or-later
"""Bugs the generated inputs of test_filter_fuzz.py found in the filters and the planner, one input each.

Each test states the wanted behaviour and is a strict xfail until the plugin is fixed: when one starts passing,
remove its mark and the matching tolerance in test_filter_fuzz.py (named in each reason).
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


@pytest.mark.xfail(
    strict=True,
    reason="relayhost reads mx_lookup by Python truth: the strings 'false', 'no', '0', 'off' (an ini inventory, a "
    "templated value) turn MX lookups on (_relayhost/grammar.py _format_one; tolerance: 'mx_lookup text')",
)
@pytest.mark.parametrize("text", ["false", "no", "0", "off"])
def test_relayhost_mx_lookup_text_means_what_it_says(text):
    assert relayhost_filter({"host": "relay.example.org", "port": 587, "mx_lookup": text}) == "[relay.example.org]:587"


@pytest.mark.xfail(
    strict=True,
    reason="relayhost accepts any mx_lookup value, 'maybe' or 2 included, instead of refusing it naming mx_lookup "
    "(_relayhost/grammar.py _format_one)",
)
@pytest.mark.parametrize("value", ["maybe", 2])
def test_relayhost_mx_lookup_not_a_boolean_is_refused(value):
    assert "mx_lookup" in refusal(lambda: relayhost_filter({"host": "relay.example.org", "mx_lookup": value}))


@pytest.mark.xfail(
    strict=True,
    reason="a port of more than 4300 digits makes int() raise ValueError in _relayhost/grammar.py parse_port "
    "(tolerance: _huge_digits)",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="ses_smtp_password derives a password from a key with a line break or outer white space (a key read "
    "from a file), which the planner refuses for postfix_relay_ses_secret_access_key "
    "(_relayhost/providers.py ses_smtp_password; tolerance: 'key with white space accepted')",
)
@pytest.mark.parametrize("key", [KEY + "\n", " " + KEY, KEY[:20] + "\n" + KEY[20:]])
def test_ses_key_with_white_space_is_refused(key):
    message = refusal(lambda: ses_smtp_password_filter(key, "eu-west-1"))
    assert "secret access key" in message and KEY[:20] not in message


@pytest.mark.xfail(
    strict=True,
    reason="ses_smtp_password raises UnicodeEncodeError for a key that is not UTF-8 (a lone surrogate, from a file "
    "read with surrogateescape) and TypeError for a region that is not hashable (_relayhost/providers.py; "
    "tolerance: the except in test_ses_smtp_password)",
)
@pytest.mark.parametrize(
    ("key", "region", "named"), [(KEY + "\udcff", "eu-west-1", "secret access key"), (KEY, ["eu-west-1"], "region")]
)
def test_ses_key_or_region_of_the_wrong_kind_is_refused(key, region, named):
    assert named in refusal(lambda: ses_smtp_password_filter(key, region))


@pytest.mark.xfail(
    strict=True,
    reason="allowlist_fleet_markdown writes a line break of a value or of the title as it is: the table row (or "
    "heading) is cut and the rest becomes text (_allowlist/render.py render_fleet_markdown; tolerance: "
    "'line break in a value')",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="the planner passes on the messages of Ansible's argument spec validation ('argument "
    "'postfix_relay_port' is of type...', 'value of postfix_mode must be one of...'), which do not start with the "
    "variable's name as the planner's own refusals do (filter/_relay_settings.py coerce; tolerance: 'refusal not "
    "starting with the variable')",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="an int variable given inf or more than 4300 digits makes Ansible's check_type_int raise "
    "OverflowError/ValueError, which the planner lets out instead of refusing the variable "
    "(filter/_relay_settings.py coerce; tolerance: _int_crash)",
)
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


@pytest.mark.xfail(
    strict=True,
    reason="host facts are not checked: a ca_bundle with a line break or control character reaches main.cf "
    "(smtp_tls_CAfile) in the plan (_plan.py; tolerance: 'host fact with a control character')",
)
@pytest.mark.parametrize("ca_bundle", ["/etc/ssl/certs/ca.crt\nrelayhost = [evil.example]", "/etc/ssl/\x1b.crt"])
def test_planner_host_facts_with_a_line_break_are_refused(ca_bundle):
    with pytest.raises(AnsibleFilterError):
        relay_settings({"postfix_relay_host": "relay.example.org"}, host={**HOST, "ca_bundle": ca_bundle})
