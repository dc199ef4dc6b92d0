# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-sender relays and credentials (postfix_sender_relays) in the role's one plan, through the role's filter."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings
from ansible_collections.smtp.relay.plugins.module_utils._rules import static_checks
from tests.unit.plugins.modules.fuzz_support import SECRET_HEAD, SECRET_TAIL, secret
from tests.unit.plugins.modules.test_option_fuzz import FUZZ, anything, odd_number, odd_text

HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": "/etc/ssl/ca.pem", "packages": ["postfix"]}
PASSWORD = "Sender-s3cret-Pa55"
PROVIDER = {"host": "smtp.provider.example.net", "port": 2587, "username": "apikey", "password": PASSWORD}


def plan(**variables):
    return relay_settings({"postfix_relay_host": "campus.example.org", "postfix_relay_port": 587, **variables}, HOST)


def refused(**variables) -> str:
    with pytest.raises(AnsibleFilterError) as info:
        plan(**variables)
    assert PASSWORD not in info.value.message
    return info.value.message


def relays(*entries):
    return {"postfix_sender_relays": list(entries)}


def test_a_domain_through_a_provider_the_rest_through_the_campus_relay():
    got = plan(**relays({"senders": ["app.example.org", "@Mail.Example.net", "Alerts@Example.com"], **PROVIDER}))
    cf = got["main_cf"]
    assert cf["relayhost"] == "[campus.example.org]:587"
    assert got["sender_relays"] == {
        "@app.example.org": "[smtp.provider.example.net]:2587",
        "@mail.example.net": "[smtp.provider.example.net]:2587",
        "alerts@example.com": "[smtp.provider.example.net]:2587",
    }
    assert cf["sender_dependent_relayhost_maps"] == "hash:/etc/postfix/sender_relays"
    assert cf["smtp_sender_dependent_authentication"] == "yes"
    assert cf["smtp_sasl_auth_enable"] == "yes"
    assert cf["smtp_sasl_password_maps"] == "hash:/etc/postfix/sasl_passwd"
    assert cf["smtp_sasl_security_options"] == "noplaintext, noanonymous"
    assert got["sasl_keys"] == [], "the campus relay itself gets no credentials"
    assert got["sender_sasl"] == [
        {"key": key, "username": "apikey", "relay": 0}
        for key in ("@app.example.org", "@mail.example.net", "alerts@example.com")
    ]
    assert {"name": "sender_relays", "entries": got["sender_relays"], "state": "present"} in got["tables"]
    assert set(got["maps"]) >= {"sasl_passwd", "sender_relays"}
    assert PASSWORD not in repr(got), "the plan never holds a secret"


def test_relays_without_credentials_leave_sasl_off():
    got = plan(**relays({"senders": ["app.example.org"], "host": "192.0.2.25", "port": 25}))
    cf = got["main_cf"]
    assert got["sender_relays"] == {"@app.example.org": "[192.0.2.25]:25"}
    assert cf["smtp_sender_dependent_authentication"] is None
    assert cf["smtp_sasl_auth_enable"] == "no"
    assert cf["smtp_sasl_password_maps"] is None
    assert "sasl_passwd" not in got["maps"]
    assert got["sender_sasl"] == []


def test_main_relay_credentials_and_sender_credentials_together():
    got = plan(
        postfix_relay_username="campususer",
        postfix_relay_password="campus-pass",
        **relays(
            {"senders": ["app.example.org"], **PROVIDER},
            {"senders": ["ops@example.org"], "host": "smtp2.example.org", "mx_lookup": True},
        ),
    )
    assert got["sasl_keys"] == ["[campus.example.org]:587"]
    assert [entry["key"] for entry in got["sender_sasl"]] == ["@app.example.org"]
    assert got["sender_relays"]["ops@example.org"] == "smtp2.example.org:587", "default port 587, MX lookup"


def test_no_sender_relays_removes_the_parameters_and_the_table():
    got = plan()
    cf = got["main_cf"]
    assert cf["sender_dependent_relayhost_maps"] is None
    assert cf["smtp_sender_dependent_authentication"] is None
    assert {"name": "sender_relays", "entries": {}, "state": "absent"} in got["tables"]


def test_a_port_without_a_known_tls_mode_takes_the_main_relays():
    got = plan(**relays({"senders": ["app.example.org"], **PROVIDER, "port": 10025}))
    assert got["sender_relays"] == {"@app.example.org": "[smtp.provider.example.net]:10025"}


def test_implicit_tls_relays_together():
    got = plan(
        postfix_relay_port=465,
        **relays({"senders": ["app.example.org"], **PROVIDER, "port": 465}),
    )
    assert got["main_cf"]["smtp_tls_wrappermode"] == "yes"
    assert got["sender_relays"] == {"@app.example.org": "[smtp.provider.example.net]:465"}


@pytest.mark.parametrize(
    ("entries", "extra", "expected"),
    [
        ([{"senders": ["not a domain"], **PROVIDER}], {}, "postfix_sender_relays[0].senders[0]: "),
        ([{"senders": ["ok.example.org", "@"], **PROVIDER}], {}, "postfix_sender_relays[0].senders[1]: "),
        ([{"senders": ["user@"], **PROVIDER}], {}, "postfix_sender_relays[0].senders[0]: "),
        ([{"senders": ["<>"], **PROVIDER}], {}, "postfix_sender_relays[0].senders[0]: "),
        ([{"senders": ["a@b@example.org"], **PROVIDER}], {}, "postfix_sender_relays[0].senders[0]: "),
        ([{"senders": ['"a b"@example.org'], **PROVIDER}], {}, "postfix_sender_relays[0].senders[0]: "),
        ([{"senders": ["192.0.2.1"], **PROVIDER}], {}, "postfix_sender_relays[0].senders[0]: "),
        ([{"senders": ["app.example.org\n"], **PROVIDER}], {}, "postfix_sender_relays[0].senders[0]: "),
        ([{"senders": [], **PROVIDER}], {}, "postfix_sender_relays[0].senders: no sender given"),
        (
            [{"senders": ["app.example.org"], **PROVIDER}, {"senders": ["@App.Example.org"], "host": "b.example.org"}],
            {},
            "postfix_sender_relays[1].senders[0]: @app.example.org is already routed by "
            "postfix_sender_relays[0].senders[0]",
        ),
        (
            [{"senders": ["app.example.org", "app.example.org."], **PROVIDER}],
            {},
            "postfix_sender_relays[0].senders[1]: @app.example.org is already routed",
        ),
        ([{"senders": ["app.example.org"], "host": "h.example.org", "username": "u"}], {}, "].password: missing"),
        ([{"senders": ["app.example.org"], "host": "h.example.org", "password": PASSWORD}], {}, "].username: missing"),
        ([{"senders": ["app.example.org"], **PROVIDER, "password": PASSWORD + "\n"}], {}, "[0].password: the value"),
        ([{"senders": ["app.example.org"], **PROVIDER, "username": "a:b"}], {}, "[0].username: 'a:b' contains"),
        ([{"senders": ["app.example.org"], **PROVIDER, "port": 465}], {}, "postfix_sender_relays[0].port: port 465"),
        ([{"senders": ["app.example.org"], **PROVIDER, "port": 70000}], {}, "postfix_sender_relays[0].port: "),
        ([{"senders": ["app.example.org"], **PROVIDER}], {"postfix_relay_port": 465}, "].port: port 2587 means"),
        (
            [{"senders": ["app.example.org"], **PROVIDER, "port": 10025}],
            {"postfix_relay_tls": "none"},
            "postfix_sender_relays[0].username: credentials over postfix_relay_tls: none",
        ),
        ([{"senders": ["app.example.org"], **PROVIDER, "host": "[h.example.org]:587"}], {}, "[0].host: "),
        ([{"senders": ["app.example.org"], **PROVIDER, "host": "h.example.org:587"}], {}, "[0].host: "),
        ([{"senders": ["app.example.org"], **PROVIDER, "relay": "x"}], {}, "postfix_sender_relays[0].relay: unknown"),
        ([{"senders": ["app.example.org"], "port": 587}], {}, "postfix_sender_relays[0].host: required"),
        (
            [{"senders": ["app.example.org"], **PROVIDER}],
            {"postfix_main_cf": {"sender_dependent_relayhost_maps": "hash:/etc/postfix/other"}},
            "postfix_main_cf.sender_dependent_relayhost_maps: set by the role from postfix_sender_relays",
        ),
    ],
)
def test_refused_naming_the_field(entries, extra, expected):
    assert expected in refused(**relays(*entries), **extra)


def test_pinned_main_relay_certificates_are_refused():
    message = refused(
        postfix_relay_tls_fingerprints=["AB" * 32],
        **relays({"senders": ["app.example.org"], **PROVIDER}),
    )
    assert message.startswith("postfix_sender_relays: cannot be used with postfix_relay_tls_fingerprints")


def test_main_cf_may_set_the_parameters_when_the_variable_is_not_used():
    got = plan(postfix_main_cf={"sender_dependent_relayhost_maps": "hash:/etc/postfix/mine"})
    assert got["main_cf"]["sender_dependent_relayhost_maps"] == "hash:/etc/postfix/mine"


SENDER_ONLY = {
    "relayhost": "[campus.example.org]:587",
    "smtp_tls_security_level": "encrypt",
    "smtp_sasl_auth_enable": "yes",
    "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
}


def key_rule(settings, keys):
    found = [c for c in static_checks(settings, {"sasl_keys": keys}) if c["id"] == "sasl.key_mismatch"]
    assert len(found) == 1
    return found[0]


def test_sender_keys_count_with_sender_dependent_authentication():
    got = key_rule({**SENDER_ONLY, "smtp_sender_dependent_authentication": "yes"}, ["@app.example.org"])
    assert got["status"] == "pass"
    assert "@app.example.org" in got["message"] and "without AUTH" in got["message"]


def test_sender_keys_alone_fail_without_sender_dependent_authentication():
    got = key_rule(SENDER_ONLY, ["@app.example.org"])
    assert got["status"] == "fail"
    assert "smtp_sender_dependent_authentication = yes" in got["hint"]
    assert "sender keys only" in got["message"]


def test_a_relayhost_key_still_matches_among_sender_keys():
    got = key_rule(SENDER_ONLY, ["@app.example.org", "[campus.example.org]:587"])
    assert got["status"] == "pass"


def pick(*strategies):
    return st.sampled_from(strategies).flatmap(lambda strategy: strategy)


sender = pick(st.sampled_from(["app.example.org", "@App.example.org", "a@example.org", "@", "", "a b"]), odd_text)
entry = st.fixed_dictionaries(
    {"senders": pick(st.lists(sender, max_size=3), anything)},
    optional={
        "host": pick(st.sampled_from(["smtp.example.net", "192.0.2.9", "[x]:1", ""]), odd_text),
        "port": pick(st.sampled_from([587, 2587, 465, 10025, "587"]), odd_number),
        "mx_lookup": pick(st.sampled_from([True, "no", "maybe"]), anything),
        "username": pick(st.sampled_from(["apikey", "", "a:b"]), odd_text),
        "password": pick(secret, st.sampled_from(["", None])),
    },
)


@FUZZ
@given(entries=pick(st.lists(entry, max_size=3), anything), tls=st.sampled_from([None, "none", "implicit"]))
def test_generated_sender_relays_are_planned_or_refused_naming_them(entries, tls):
    variables = {"postfix_sender_relays": entries, **({"postfix_relay_tls": tls} if tls else {})}
    try:
        got = plan(**variables)
    except AnsibleFilterError as e:
        assert SECRET_HEAD not in e.message and SECRET_TAIL not in e.message, e.message
        assert e.message.startswith(("postfix_sender_relays", "postfix_relay_tls")), e.message
        return
    text = json.dumps(got, default=str)
    assert SECRET_HEAD not in text and SECRET_TAIL not in text
    assert all(key.isprintable() and " " not in key for key in got["sender_relays"])
