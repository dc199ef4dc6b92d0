# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.relay_check through AnsibleModule: argument spec, one failure path, nothing secret out."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._probe import relay_check as _relaycheck
from ansible_collections.smtp.relay.plugins.modules import relay_check as module
from tests.unit.plugins.module_utils.smtp_fakes import FakeNetwork

# Each test runs on the controller as it is and as if it had Postfix installed (conftest's controller fixture).
pytestmark = pytest.mark.usefixtures("controller")

SECRET = "m0dule-s3cret"
SETTINGS = {
    "relayhost": "[smtp.example.org]:587",
    "smtp_tls_security_level": "encrypt",
    "smtp_sasl_auth_enable": True,
    "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
    "smtp_sasl_security_options": "noanonymous",
}


def fake_seams(monkeypatch, network):
    """The probe's DNS and connections, as relay_check builds them, replaced by the fake network's."""
    monkeypatch.setattr(_relaycheck, "probe_resolver", lambda opts: network.resolver)
    monkeypatch.setattr(_relaycheck, "open_connection", network.connect)


@pytest.fixture(autouse=True)
def no_postfix(monkeypatch):
    # The machine running the tests may or may not have Postfix: make it never there.
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: None)


def test_preflight_passes(run_module):
    result = run_module(module.main, {"probe": False, "settings": SETTINGS, "sasl_keys": ["[smtp.example.org]:587"]})
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["valid"] is True
    assert result["relayhosts"][0]["port"] == 587
    assert " pass" in result["msg"] and "fail" not in result["msg"]
    assert {c["status"] for c in result["checks"]} <= {"pass", "warn"}


def test_settings_read_from_the_hosts_postfix(run_module, fake, tmp_path):
    # "The host" is the fake postconf over a main.cf in tmp_path: never the controller's /etc/postfix or SASL plugins.
    (tmp_path / "main.cf").write_text("relayhost = [smtp.example.org]:587\nsmtp_tls_security_level = encrypt\n")
    result = run_module(module.main, {"probe": False, "config_dir": str(tmp_path)})
    assert not result.get("failed"), result
    assert result["settings_source"] == "host"
    assert result["relayhost"] == "[smtp.example.org]:587"
    assert result["tls_mode"] == "starttls"
    assert "sasl.plugins_missing" not in {c["id"] for c in result["checks"]}  # no SASL plugin directory: not judged
    assert ["-n", "-c", str(tmp_path)] in [call[1:] for call in fake.called("postconf")]


def test_preflight_failure_names_the_parameter(run_module):
    args = {"probe": False, "settings": {**SETTINGS, "smtp_tls_security_level": "none"}}
    result = run_module(module.main, args)
    assert result["failed"] is True
    assert "sasl.without_encryption" in result["msg"]
    assert "smtp_tls_security_level = none" in result["msg"]
    assert result["valid"] is False
    assert any(c["id"] == "sasl.without_encryption" and c["status"] == "fail" for c in result["checks"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"relayhost": "[a.example]:587", "tls": "tls13"}, "value of tls must be one of: starttls, implicit, none"),
        ({"relayhost": "[a.example]:0"}, "port 0 is outside 1-65535"),
        ({"relayhost": "[a.example]:587\nx"}, "control character"),
        ({"relayhost": "[a.example]:587", "timeout": 0}, "timeout must be more than 0 and at most 300 seconds"),
        ({"relayhost": "[a.example]:587", "username": "u"}, "parameters are required together: username, password"),
    ],
)
def test_bad_options_are_refused(run_module, args, message):
    result = run_module(module.main, args)
    assert result["failed"] is True
    assert message in result["msg"]


def test_probe_runs_and_never_returns_the_password(run_module, monkeypatch):
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]}, relay_kwargs={"users": {"u": "wrong"}})
    fake_seams(monkeypatch, network)
    args = {"relayhost": "[relay.example.test]:2525", "tls": "none", "username": "u", "password": SECRET, "timeout": 2}
    result = run_module(module.main, args)
    assert result["failed"] is True
    assert "auth.rejected" in result["msg"]
    assert SECRET not in json.dumps(result)


def test_check_mode_does_not_send(run_module, monkeypatch):
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]})
    fake_seams(monkeypatch, network)
    args = {"relayhost": "[relay.example.test]:2525", "tls": "none", "mail_from": "a@example.test",
            "rcpt_to": ["b@example.test"], "send_test": True}  # fmt: skip
    result = run_module(module.main, args, check_mode=True)
    assert not result.get("failed"), result
    assert result["queue_id"] is None
    assert next(c for c in result["checks"] if c["id"] == "message.sent")["status"] == "skip"
    assert "DATA" not in network.relays[0].seen


def test_secret_named_settings_are_not_echoed(run_module):
    """relay_check hides the values of secret-named parameters in its settings option, as postconf does."""
    args = {"probe": False, "settings": {**SETTINGS, "relay_api_key": SECRET}, "sasl_keys": ["[smtp.example.org]:587"]}
    result = run_module(module.main, args)
    assert result["invocation"]["module_args"]["settings"]["relayhost"] == SETTINGS["relayhost"]
    assert SECRET not in json.dumps(result)
