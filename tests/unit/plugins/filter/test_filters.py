# SPDX-License-Identifier: GPL-3.0-or-later
"""The filters through Ansible's own templating, as playbooks use them."""

from __future__ import annotations

from collections import UserDict

import pytest
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.smtp.relay.plugins.filter.parse_relayhost import FilterModule as ParseFilters
from ansible_collections.smtp.relay.plugins.filter._relay_settings import plain
from ansible_collections.smtp.relay.plugins.filter.relayhost import FilterModule as FormatFilters
from ansible_collections.smtp.relay.plugins.filter.ses_smtp_password import FilterModule as SesFilters


def render(expression, **variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def test_filter_modules_export_their_names():
    assert set(ParseFilters().filters()) == {"parse_relayhost"}
    assert set(FormatFilters().filters()) == {"relayhost"}
    assert set(SesFilters().filters()) == {"ses_smtp_password"}


def test_parse_through_templar():
    got = render("{{ value | smtp.relay.parse_relayhost }}", value="[relay.example.org]:587")
    assert got == [{"host": "relay.example.org", "port": 587, "mx_lookup": False, "is_ip": False}]


def test_format_through_templar():
    got = render("{{ value | smtp.relay.relayhost }}", value={"host": "relay.example.org", "port": 587})
    assert got == "[relay.example.org]:587"


@pytest.mark.parametrize(
    ("mx_lookup", "expected"),
    [("yes", "relay.example.org:587"), ("On", "relay.example.org:587"), (1, "relay.example.org:587"),
     ("no", "[relay.example.org]:587"), ("false", "[relay.example.org]:587"), (0, "[relay.example.org]:587")],
)  # fmt: skip
def test_format_reads_mx_lookup_as_ansible_reads_a_boolean(mx_lookup, expected):
    relays = [{"host": "relay.example.org", "port": 587, "mx_lookup": mx_lookup}] * 2
    assert render("{{ value | smtp.relay.relayhost }}", value=relays) == f"{expected}, {expected}"


def test_ses_password_through_templar():
    got = render(
        "{{ secret | smtp.relay.ses_smtp_password('eu-west-1') }}", secret="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )
    assert got == "BMW5RDrXmmVs0lV7GpI4oLkHXpZ4stDsk6q91z1g38Pk"


@pytest.mark.parametrize(
    ("expression", "value", "fragment"),
    [
        ("{{ value | smtp.relay.parse_relayhost }}", "[relay.example.org:587]", "port is inside the brackets"),
        ("{{ value | smtp.relay.relayhost }}", {"host": "relay.example.org", "port": 0}, "outside 1-65535"),
        ("{{ value | smtp.relay.ses_smtp_password('mars-1') }}", "secret", "no Amazon SES SMTP endpoint"),
    ],
)
def test_filter_errors_are_ansible_errors(expression, value, fragment):
    with pytest.raises(AnsibleError, match=fragment):
        render(expression, value=value)


def test_the_plan_validates_plain_copies_of_the_variables():
    """The validator deep-copies its input: lazy or tagged values from Ansible become builtin types first."""

    class Tagged(str):
        pass

    copied = plain(UserDict({Tagged("k"): (Tagged("a"), 587, True, None, UserDict({"x": 1.5}))}))
    assert copied == {"k": ["a", 587, True, None, {"x": 1.5}]}
    assert [type(v).__name__ for v in [*copied, *copied["k"]]] == ["str", "str", "int", "bool", "NoneType", "dict"]
