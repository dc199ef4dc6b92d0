# SPDX-License-Identifier: GPL-3.0-or-later
"""_sender.names: domain normalisation, addresses, special-use names, placeholders, approved lists."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._sender import names
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Example.ORG.", "example.org"),
        (" mail.sender-ok.org ", "mail.sender-ok.org"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("MÜNCHEN.de", "xn--mnchen-3ya.de"),
    ],
)
def test_domains_are_normalized(raw, expected):
    assert names.normalize_domain(raw) == expected


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("", "empty"),
        ("localhost", "two labels"),
        ("a..org", "empty label"),
        ("-a.org", "inner hyphens"),
        ("a_b.org", "inner hyphens"),
        ("192.0.2.1", "numeric"),
        ("a.org\nrelayhost=x", "control"),
        ("x@a.org", "'@'"),
        ("a" * 64 + ".org", "1-63"),
    ],
)
def test_bad_domains_say_why(raw, problem):
    with pytest.raises(ValueError, match=problem):
        names.normalize_domain(raw)


def test_addresses():
    assert names.split_address("<noreply@Sender-OK.org>") == ("noreply", "Sender-OK.org")
    assert names.split_address('"a b"@x.org') == ('"a b"', "x.org")
    for bad in ("noreply", "@x.org", "a..b@x.org", "x" * 65 + "@x.org"):
        with pytest.raises(ValueError):
            names.split_address(bad)


@pytest.mark.parametrize(
    ("name", "reserved"),
    [
        ("mail.test", "test"),
        ("foo.invalid", "invalid"),
        ("x.localhost", "localhost"),
        ("printer.local", "local"),
        ("a.example", "example"),
        ("example.com", "example.com"),
        ("sub.example.net", "example.net"),
        ("example.org", "example.org"),
        ("1.168.192.in-addr.arpa", "arpa"),
        ("abc.onion", "onion"),
        ("sender-ok.org", None),
        ("myexample.com", None),
    ],
)
def test_special_use(name, reserved):
    assert names.special_use(name) == reserved


def test_placeholders():
    assert names.placeholder("test.com") == "test.com"
    assert names.placeholder("mail.domain.com") == "domain.com"
    assert names.placeholder("mydomain.community") is None


def test_rules_tell_apex_from_subdomains():
    rules = names.parse_rules(["Sender-OK.org", "*.relay-lab.net"])
    assert names.matching_rule(rules, "sender-ok.org") == rules[0]
    assert names.matching_rule(rules, "a.sender-ok.org") is None
    assert names.matching_rule(rules, "a.b.relay-lab.net") == rules[1]
    assert names.matching_rule(rules, "relay-lab.net") is None
    assert str(rules[1]) == "*.relay-lab.net"


def test_bad_rule_names_the_field_and_value():
    with pytest.raises(SmtpRelayError) as err:
        names.parse_rules(["ok.org", "*.bad_name.org"])
    assert "allowed_domains" in err.value.msg
    assert "*.bad_name.org" in err.value.msg
    assert err.value.details["field"] == "allowed_domains"


@pytest.mark.parametrize("address", ["a\n@example.org", "a\nb@example.org", "é\x00@example.org", "é\u2028@example.org"])
def test_control_and_line_separator_characters_in_local_parts_are_refused(address):
    # "$" in the dot-atom pattern matched before a final newline, and non-ASCII local parts were not looked at.
    with pytest.raises(ValueError, match="control"):
        names.split_address(address)
