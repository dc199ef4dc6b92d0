# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.postconf through AnsibleModule, with the Postfix binaries faked."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.modules import postconf as module


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "main.cf").write_text("# local\nrelayhost =\ninet_interfaces = all\n")
    return tmp_path


SETTINGS = {"relayhost": "[relay.example.org]:587", "inet_interfaces": "loopback-only", "smtp_sasl_auth_enable": True}


def test_sets_many_and_is_idempotent(run_module, fake, config_dir):
    args = {"settings": SETTINGS, "config_dir": str(config_dir)}
    result = run_module(module.main, args, diff=True)
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert result["restart_required"] is True
    assert result["changed_parameters"] == ["inet_interfaces", "relayhost", "smtp_sasl_auth_enable"]
    assert result["diff"]["after"] == (
        "# local\nrelayhost = [relay.example.org]:587\ninet_interfaces = loopback-only\nsmtp_sasl_auth_enable = yes\n"
    )
    assert all(call[0] == "/usr/sbin/postconf" for call in fake.calls)

    again = run_module(module.main, args)
    assert again["changed"] is False
    assert again["restart_required"] is False


def test_check_mode_leaves_the_file(run_module, fake, config_dir):
    before = (config_dir / "main.cf").read_bytes()
    result = run_module(module.main, {"settings": SETTINGS, "config_dir": str(config_dir)}, check_mode=True)
    assert result["changed"] is True
    assert (config_dir / "main.cf").read_bytes() == before


def test_unknown_name_fails_with_hint(run_module, fake, config_dir):
    before = (config_dir / "main.cf").read_bytes()
    result = run_module(module.main, {"settings": {"relayhst": "[r]:587"}, "config_dir": str(config_dir)})
    assert result["failed"] is True
    assert "did you mean relayhost? (params.mistyped)" in result["msg"]
    assert result["unknown_parameters"] == ["relayhst"]
    assert (config_dir / "main.cf").read_bytes() == before


def test_newline_refused(run_module, fake, config_dir):
    result = run_module(module.main, {"settings": {"relayhost": "a\nb"}, "config_dir": str(config_dir)})
    assert result["failed"] is True
    assert "settings.relayhost" in result["msg"]


def test_preexisting_unused_parameter_becomes_a_warning(run_module, fake, config_dir, monkeypatch):
    # Captured at the call: how warnings reach the result differs once controller code is loaded.
    warned = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, msg, **kw: warned.append(msg))
    with open(config_dir / "main.cf", "a") as handle:
        handle.write("old_typo = 1\n")
    result = run_module(module.main, {"settings": {"relayhost": "[r]:587"}, "config_dir": str(config_dir)})
    assert result["changed"] is True
    assert warned == [f"{config_dir}/main.cf sets old_typo, which Postfix does not use"]


def test_secret_named_value_hidden_everywhere(run_module, fake, config_dir):
    args = {"settings": {"custom_api_token": "tok-123456"}, "config_dir": str(config_dir), "allow_unknown": True}
    result = run_module(module.main, args, diff=True)
    assert result["changed"] is True
    assert "tok-123456" not in json.dumps(result)
    assert "tok-123456" in (config_dir / "main.cf").read_text()


def test_no_output_holds_a_secret_named_value_in_any_shape(run_module, fake, config_dir, monkeypatch):
    """The result, the echo of the arguments and the line Ansible logs to the host's journal: the values are
    registered before Ansible validates (or logs) anything, in every form they take there."""
    logged = []
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: logged.append((msg, log_args)))
    secret = "tok-1\\x2'3456"  # a quote and a backslash: the journal shows the dict's repr, escaping them
    settings = {"custom_api_token": [secret, "tok-second-item"], "relay_secret": " tok-padded "}
    args = {"settings": settings, "config_dir": str(config_dir), "allow_unknown": True}
    result = run_module(module.main, args, diff=True)
    assert result["changed"] is True, result
    shown = json.dumps([result, logged])
    assert logged, "the invocation was logged"
    assert not [v for v in ("tok-1", "3456", "tok-second-item", "tok-padded") if v in shown], shown
    # Given as a "k=v" string, which Ansible turns into a dict, and refused for another option.
    args = {"settings": f"custom_api_token={secret[:5]}xyz-789", "config_dir": str(config_dir), "allow_unknown": "?"}
    refused = run_module(module.main, args)
    assert refused["failed"] is True and "allow_unknown" in refused["msg"]
    assert "xyz-789" not in json.dumps(refused)
