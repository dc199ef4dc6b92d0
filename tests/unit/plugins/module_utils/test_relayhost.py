# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    RelayhostError,
    format_relayhost,
    secret_problem,
    implied_tls,
    parse_relayhost,
)
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError


def one(host, port=25, mx_lookup=False, is_ip=False):
    return {"host": host, "port": port, "mx_lookup": mx_lookup, "is_ip": is_ip}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("   ", []),
        ("relay.example.org", [one("relay.example.org", mx_lookup=True)]),
        ("relay.example.org:2525", [one("relay.example.org", 2525, mx_lookup=True)]),
        ("[relay.example.org]", [one("relay.example.org")]),
        ("[relay.example.org]:587", [one("relay.example.org", 587)]),
        ("[relay.example.org]:submission", [one("relay.example.org", 587)]),
        ("[relay.example.org]:submissions", [one("relay.example.org", 465)]),
        ("[relay.example.org]:smtps", [one("relay.example.org", 465)]),
        ("[relay.example.org]:smtp", [one("relay.example.org", 25)]),
        ("[192.0.2.10]:587", [one("192.0.2.10", 587, is_ip=True)]),
        ("[ipv6:2001:db8::25]:465", [one("2001:db8::25", 465, is_ip=True)]),
        ("[IPv6:2001:DB8::25]", [one("2001:db8::25", is_ip=True)]),
        (
            "[a.example.org]:587, [b.example.org]:587 c.example.org",
            [one("a.example.org", 587), one("b.example.org", 587), one("c.example.org", mx_lookup=True)],
        ),
        ("[a.example.org]:587,[b.example.org]", [one("a.example.org", 587), one("b.example.org")]),
        ("localhost", [one("localhost", mx_lookup=True)]),
        ("[relay.example.org.]:587", [one("relay.example.org.", 587)]),
    ],
)
def test_parse_valid(text, expected):
    assert parse_relayhost(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[relay.example.org:587]", "port is inside the brackets"),
        ("192.0.2.10:587", "without brackets"),
        ("192.0.2.10", "without brackets"),
        ("2001:db8::25", "IPv6 address"),
        ("[2001:db8::25]:587", "without the ipv6: prefix"),
        ("[ipv6:192.0.2.1]", "is not an IPv6 address"),
        ("[relay.example.org]:0", "outside 1-65535"),
        ("[relay.example.org]:65536", "outside 1-65535"),
        ("[relay.example.org]:smtpx", "unknown port or service"),
        ("[relay.example.org]:", "unknown port or service"),
        ("relay.example.org:", "missing port"),
        ("[relay.example.org", "unbalanced brackets"),
        ("relay.example.org]", "unbalanced brackets"),
        ("[[relay.example.org]]", "unbalanced brackets"),
        ("[relay.example.org]587", "after the brackets"),
        ("[]:587", "not a valid host name"),
        ("-bad-.example.org", "not a valid host name"),
        ("relay_host.example.org", "not a valid host name"),
        ("[relay.example.org]:587\nrelayhost = evil", "control character"),
        ("[relay.example.org]:587\tx", "control character"),
        ("relay..example.org", "not a valid host name"),
    ],
)
def test_parse_invalid(text, fragment):
    with pytest.raises(RelayhostError) as info:
        parse_relayhost(text)
    assert fragment in info.value.msg
    assert repr(text) in info.value.msg


def test_parse_suggests_the_fix_for_port_in_brackets():
    with pytest.raises(RelayhostError, match=r"write \[relay.example.org\]:587"):
        parse_relayhost("[relay.example.org:587]")


def test_parse_refuses_non_string():
    with pytest.raises(RelayhostError, match="must be a string"):
        parse_relayhost(587)


@pytest.mark.parametrize(
    ("relay", "expected"),
    [
        ({"host": "relay.example.org", "port": 587}, "[relay.example.org]:587"),
        ({"host": "relay.example.org", "port": 587, "mx_lookup": True}, "relay.example.org:587"),
        ({"host": "relay.example.org"}, "[relay.example.org]"),
        ({"host": "192.0.2.1", "port": 25, "mx_lookup": True}, "[192.0.2.1]:25"),
        ({"host": "2001:db8::1", "port": "submission"}, "[ipv6:2001:db8::1]:587"),
        (
            [{"host": "a.example.org", "port": 587}, {"host": "2001:db8::1", "port": 587}],
            "[a.example.org]:587, [ipv6:2001:db8::1]:587",
        ),
        ([], ""),
    ],
)
def test_format_valid(relay, expected):
    assert format_relayhost(relay) == expected


@pytest.mark.parametrize(
    ("relay", "fragment"),
    [
        ({"host": "relay.example.org:587"}, "not a valid host name"),
        ({"host": "[relay.example.org]"}, "not a valid host name"),
        ({"host": "relay.example.org", "port": 0}, "outside 1-65535"),
        ({"host": "relay.example.org", "port": 70000}, "outside 1-65535"),
        ({"host": "relay.example.org", "port": "smtpx"}, "unknown port or service"),
        ({"host": "relay.example.org", "port": True}, "not a number"),
        ({"host": "relay.example.org\nmydestination = x"}, "control character"),
        ({"host": ""}, "non-empty string"),
        ({"port": 587}, "non-empty string"),
        ({"host": "relay.example.org", "prot": 587}, "unknown relay key"),
        ("relay.example.org", "must be a dict"),
        # Text is the caller's to read as a boolean (the relayhost filter does, Ansible's way): never Python's truth.
        ({"host": "relay.example.org", "mx_lookup": "false"}, "mx_lookup must be true or false"),
        ({"host": "relay.example.org", "mx_lookup": 1}, "mx_lookup must be true or false"),
        ({"host": "relay.example.org", "port": "9" * 4301}, "is outside 1-65535"),
        ({"host": "relay.example.org", "port": 10**5000}, "is outside 1-65535"),
    ],
)
def test_format_invalid(relay, fragment):
    with pytest.raises(SmtpRelayError) as info:
        format_relayhost(relay)
    assert fragment in info.value.msg


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostnames = st.lists(label, min_size=1, max_size=4).map(".".join).map(lambda h: h + ".example")
ipv4 = st.ip_addresses(v=4).map(str)
ipv6 = st.ip_addresses(v=6).map(str)
ports = st.integers(min_value=1, max_value=65535)
relays = st.one_of(
    st.fixed_dictionaries({"host": hostnames, "port": ports, "mx_lookup": st.booleans()}),
    st.fixed_dictionaries({"host": st.one_of(ipv4, ipv6), "port": ports}),
)


@given(st.lists(relays, min_size=1, max_size=4))
def test_round_trip_from_structure(relay_list):
    text = format_relayhost(relay_list)
    parsed = parse_relayhost(text)
    assert len(parsed) == len(relay_list)
    for given_relay, got in zip(relay_list, parsed, strict=True):
        is_ip = got["is_ip"]
        assert got["port"] == given_relay["port"]
        if is_ip:
            assert ipaddress.ip_address(got["host"]) == ipaddress.ip_address(given_relay["host"])
            assert got["mx_lookup"] is False
        else:
            assert got["host"] == given_relay["host"]
            assert got["mx_lookup"] == given_relay["mx_lookup"]
    assert format_relayhost(parsed) == text


@given(st.lists(relays, min_size=1, max_size=4), st.sampled_from([", ", ",", " ", " , "]))
def test_round_trip_from_text(relay_list, separator):
    text = separator.join(format_relayhost(r) for r in relay_list)
    assert parse_relayhost(format_relayhost(parse_relayhost(text))) == parse_relayhost(text)


@pytest.mark.parametrize(
    ("port", "mode"), [(465, "implicit"), (2465, "implicit"), (587, "starttls"), (25, "starttls"), (30002, None)]
)
def test_implied_tls(port, mode):
    assert implied_tls(port) == mode


@pytest.mark.parametrize("name", ["a\n.example.org", "relay.example.org\n", "a.example.org\u2028"])
def test_a_host_name_never_ends_or_hides_a_line_break(name):
    from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import is_hostname

    assert is_hostname(name) is False


@pytest.mark.parametrize(
    ("text", "port"), [("[a.example.org]:" + "0" * 5000 + "587", 587), ("[a.example.org]:0" + "9" * 4400, None)]
)
def test_a_port_of_thousands_of_digits_is_read_or_refused_not_crashed_on(text, port):
    """int() refuses text of more than 4300 digits: leading zeros are Postfix's "0587", anything else is too big."""
    if port:
        assert parse_relayhost(text)[0]["port"] == port
        return
    with pytest.raises(SmtpRelayError) as info:
        parse_relayhost(text)
    assert "is outside 1-65535" in info.value.msg and len(info.value.msg) < 500


@pytest.mark.parametrize("secret", ["key\n", " key", "key\t", "k\u2028ey", "key\udcff"])
def test_secret_problem_names_the_problem_never_the_secret(secret):
    problem = secret_problem(secret)
    assert problem and "key" not in problem and "hidden" in problem


def test_a_sound_secret_has_no_problem():
    assert secret_problem("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY+é") is None
