# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json

import pytest

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._probe import relay_check as _relaycheck
from ansible_collections.smtp.relay.plugins.module_utils._probe.relay_check import relay_check, run, validate_options

from .dns_fakes import StaticBackend
from .postfix_fake import FakePostfix
from .smtp_fakes import FakeNetwork

SECRET = "n0t-f0r-y0ur-eyes"
PREFLIGHT = {
    "relayhost": "[smtp.example.org]:465",
    "smtp_tls_security_level": "encrypt",
    "smtp_tls_wrappermode": "yes",
    "smtp_sasl_auth_enable": "yes",
    "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
    "smtp_sasl_security_options": "noanonymous",
    "smtp_sasl_tls_security_options": "noanonymous",
}


class NoPostfix:
    """A host without Postfix: every program is missing; records what was asked."""

    def __init__(self):
        self.calls = []

    def __call__(self, args):
        self.calls.append(args)
        return 127, "", f"{args[0]}: not found"


def ids(result, status=None):
    return [c["id"] for c in result["checks"] if status is None or c["status"] == status]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"tls": "ssl"}, "tls: unknown TLS mode 'ssl'; accepted: starttls, implicit, none"),
        ({"relayhost": "[smtp.example.org]:0"}, "port 0 is outside 1-65535"),
        ({"relayhost": "[smtp.example.org]:587\nrelayhost = [evil]"}, "relayhost contains a control character"),
        ({"relayhost": "[smtp.example.org]:587", "timeout": 0}, "at most 300 seconds, got 0"),
        ({"relayhost": "[smtp.example.org]:587", "timeout": -3}, "timeout must be more than 0 and at most 300"),
        ({"relayhost": "[smtp.example.org]:587", "timeout": float("inf")}, "timeout must be more than 0 and at most"),
        ({"relayhost": "[smtp.example.org]:587", "timeout": float("nan")}, "timeout must be more than 0 and at most"),
        ({"relayhost": "[smtp.example.org]:\u0665\u0668\u0667"}, "unknown port or service"),
        ({"relayhost": "[smtp.example.org]:587\u2028x"}, "control character"),
        ({"relayhost": "[smtp.example.org]:587", "password": SECRET}, "password is given without username"),
        ({"relayhost": "[smtp.example.org]:587", "rcpt_to": ["a@example.org"]}, "rcpt_to needs mail_from"),
        ({"relayhost": "[smtp.example.org]:587", "send_test": True, "mail_from": "a@b.test"}, "send_test needs"),
        ({"settings": {"relayhost": "[a]:587\n"}}, "settings.relayhost"),
        ({"subject": "hi\nBcc: victim@example.org"}, "subject contains a control character"),
        ({"colour": "blue"}, "unknown option(s): colour"),
        ({"relayhost": "[a.example]:587", "nameservers": ["dns.example"]}, "'dns.example' is not an IP address"),
        ({"settings": PREFLIGHT, "sasl_keys": ["[smtp.example.org]:465", " "]}, "sasl_keys: a key is empty"),
        ({"settings": PREFLIGHT, "sasl_keys": [""]}, "sasl_keys: a key is empty"),
        ({"settings": PREFLIGHT, "sasl_keys": "[smtp.example.org]:465"}, "sasl_keys must be a list of map keys"),
    ],
)
def test_bad_options_are_refused(params, message):
    with pytest.raises(SmtpRelayError) as info:
        validate_options(params)
    assert message in info.value.msg
    assert SECRET not in info.value.msg + json.dumps(info.value.details)


def test_preflight_needs_no_postfix_and_names_the_parameter():
    host = NoPostfix()
    settings = {**PREFLIGHT, "smtp_tls_wrappermode": "no"}
    with pytest.raises(SmtpRelayError) as info:
        relay_check({"probe": False, "settings": settings, "sasl_keys": ["[smtp.example.org]:465"]},
                    PostconfRunner(host))  # fmt: skip
    assert "tls.wrappermode_required" in info.value.msg
    assert "smtp_tls_wrappermode = no" in info.value.msg
    assert info.value.details["valid"] is False
    assert all(c[0] == "postconf" for c in host.calls)  # asked for known names at most, nothing else


def test_preflight_passes_good_settings_without_a_runner():
    result = relay_check({"probe": False, "settings": PREFLIGHT, "sasl_keys": ["[smtp.example.org]:465"]})
    assert result["valid"] is True
    assert result["settings_source"] == "given"
    assert result["tls_mode"] == "implicit"
    assert "sasl.key_mismatch" in ids(result, "pass")


def test_preflight_key_mismatch_fails():
    result = run({"probe": False, "settings": PREFLIGHT, "sasl_keys": ["smtp.example.org:465"]})
    assert "sasl.key_mismatch" in ids(result, "fail")
    assert "sasl.key_mismatch" in result["msg"]


def test_null_setting_means_postfix_default():
    result = run({"probe": False, "settings": {**PREFLIGHT, "smtp_tls_wrappermode": None}})
    assert "tls.wrappermode_required" in ids(result, "fail")


@pytest.fixture
def postfix_host(tmp_path):
    (tmp_path / "sasl_passwd").write_text(f"[relay.example.test]:587 relayuser:{SECRET}\n")
    (tmp_path / "main.cf").write_text(
        "relayhost = [relay.example.test]:587\n"
        "smtp_tls_security_level = encrypt\n"
        "smtp_sasl_auth_enable = yes\n"
        f"smtp_sasl_password_maps = hash:{tmp_path / 'sasl_passwd'}\n"
        "smtp_sasl_security_options = noanonymous\n"
        "relayhst = [typo]:587\n"
    )
    return tmp_path


def test_host_settings_are_read_with_postconf(postfix_host):
    result = run({"probe": False, "config_dir": str(postfix_host)}, PostconfRunner(FakePostfix()))
    assert result["settings_source"] == "host"
    assert result["relayhost"] == "[relay.example.test]:587"
    assert "params.mistyped" in ids(result, "fail")
    assert "sasl.key_mismatch" in ids(result, "pass")  # keys read from the map source
    assert "params.obsolete" not in ids(result)  # defaults such as smtp_use_tls = no are not judged


def test_expectations_are_compared_in_the_same_call(postfix_host):
    runner = PostconfRunner(FakePostfix())
    met = run({"probe": False, "config_dir": str(postfix_host), "expect": {"relayhost": "[relay.example.test]:587"}},
              runner)  # fmt: skip
    assert met["mismatches"] == []
    assert "host.expectations" in ids(met, "pass")
    assert met["relay"]["relayhost"] == "[relay.example.test]:587"
    drift = run({"probe": False, "config_dir": str(postfix_host), "expect": {"relayhost": "[other.example]:587"}},
                runner)  # fmt: skip
    assert drift["mismatches"][0].startswith("relayhost: expected [other.example]:587")
    assert "host.expectations" in ids(drift, "fail")


def test_probe_with_configured_credentials_never_returns_them(postfix_host):
    relay = {"users": {"relayuser": SECRET}, "extensions": ("AUTH PLAIN LOGIN",)}
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]}, relay_kwargs=relay)
    result = run({"config_dir": str(postfix_host), "auth": True, "tls": "none", "timeout": 2},
                 PostconfRunner(FakePostfix()), **network.seams())  # fmt: skip
    assert "auth.login" in ids(result, "pass")
    assert "tls.mode_mismatch" in ids(result, "fail")  # host says STARTTLS, the option says none
    assert SECRET not in json.dumps(result)


def test_no_worthy_mechs_from_a_live_relay():
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]})
    settings = {
        "relayhost": "[relay.example.test]:2525",
        "smtp_tls_security_level": "none",
        "smtp_sasl_auth_enable": "yes",
        "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
        "smtp_sasl_security_options": "noplaintext, noanonymous",
    }
    result = run({"settings": settings, "tls": "none", "timeout": 2}, **network.seams())
    assert "sasl.no_worthy_mechs" in ids(result, "fail")
    assert result["auth"]["offered"] == ["PLAIN", "LOGIN"]
    assert result["auth"]["permitted"] == []


def test_without_postfix_the_options_are_enough():
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]})
    result = run({"relayhost": "[relay.example.test]:2525", "tls": "none", "timeout": 2}, PostconfRunner(NoPostfix()),
                 **network.seams())  # fmt: skip
    assert result["settings_source"] == "options"
    assert "tcp.connect" in ids(result, "pass")
    assert result["address"] == "192.0.2.25"


def test_without_postfix_an_unusual_port_needs_tls():
    with pytest.raises(SmtpRelayError, match="give tls"):
        run({"relayhost": "[relay.example.test]:30002"}, PostconfRunner(NoPostfix()))


def test_without_postfix_and_without_relayhost():
    with pytest.raises(SmtpRelayError, match="Postfix is not installed"):
        run({}, PostconfRunner(NoPostfix()))


def test_refused_relay_makes_the_check_invalid():
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]}, ports={587: "refused"})
    with pytest.raises(SmtpRelayError) as info:
        relay_check({"relayhost": "[relay.example.test]:587", "timeout": 1}, **network.seams())
    assert "tcp.refused" in info.value.msg
    assert [c["id"] for c in info.value.details["checks"] if c["status"] == "fail"] == ["tcp.refused"]


@pytest.fixture
def dns_servers(monkeypatch):
    """dnspython's backend answering from a table instead of the network; records which servers each question
    went to."""
    table = StaticBackend({
        ("example.test", "MX"): [(10, "mx.example.test")],
        ("mx.example.test", "A"): ["192.0.2.77"],
        ("relay.example.test", "A"): ["192.0.2.78"],
        ("relay.example.test", "AAAA"): ["2001:db8::78"],
    })  # fmt: skip
    asked = []

    def lookup(self, name, rdtype, timeout):
        asked.append((tuple(self.nameservers), name, rdtype))
        return table.lookup(name, rdtype, timeout)

    monkeypatch.setattr(_dns.DnspythonBackend, "lookup", lookup)
    return asked


@pytest.mark.parametrize(
    ("relayhost", "questions", "address"),
    [
        ("[relay.example.test]:2525", {("relay.example.test", "A"), ("relay.example.test", "AAAA")}, "192.0.2.78"),
        ("example.test:2525", {("example.test", "MX"), ("mx.example.test", "A"), ("mx.example.test", "AAAA")},
         "192.0.2.77"),
    ],
)  # fmt: skip
def test_nameservers_answer_the_address_lookup_too(dns_servers, relayhost, questions, address):
    network = FakeNetwork()  # its own resolver knows no name: only the nameservers' answers can be used
    result = run({"relayhost": relayhost, "tls": "none", "timeout": 2, "nameservers": ["192.0.2.53"]},
                 connect=network.connect)  # fmt: skip
    assert network.connects[0] == (address, 2525)
    assert result["address"] == address
    assert {(ns, rdtype) for ns, _name, rdtype in dns_servers} <= {(("192.0.2.53",), t) for t in ("MX", "A", "AAAA")}
    assert {(name, rdtype) for _ns, name, rdtype in dns_servers} == questions


def test_without_nameservers_the_probe_asks_the_hosts_own_resolver():
    opts = validate_options({"relayhost": "[relay.example.test]:587"})
    assert isinstance(_relaycheck.probe_resolver(opts).backend, _dns.SystemBackend)
    opts = validate_options({"relayhost": "[relay.example.test]:587", "nameservers": [" 2001:DB8::53 "]})
    backend = _relaycheck.probe_resolver(opts).backend
    assert isinstance(backend, _dns.DnspythonBackend)
    assert backend.nameservers == ["2001:db8::53"]


def test_localhost_from_the_hosts_file_without_nameservers():
    network = FakeNetwork()
    result = run({"relayhost": "[localhost]:2525", "tls": "none", "timeout": 2}, connect=network.connect)
    assert result["address"] in ("127.0.0.1", "::1")
