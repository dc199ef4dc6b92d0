# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.postfix_apply through AnsibleModule, with Postfix, dpkg-query and systemctl faked."""

from __future__ import annotations

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._postfix import apply as _apply
from ansible_collections.smtp.relay.plugins.modules import postfix_apply as module
from tests.unit.plugins.module_utils.test_apply import FakeHost

PASSWORD = "Very-S3cret-pw"


def test_one_call_applies_and_hides_the_secret(run_module, monkeypatch, tmp_path):
    host = FakeHost()
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, args, **kw: host(args))
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: f"/usr/sbin/{name}")
    monkeypatch.setattr(_apply, "SYSTEMD_RUNTIME", str(tmp_path))  # as on a host that runs systemd
    (tmp_path / "main.cf").write_text("")
    args = {
        "main_cf": {"relayhost": "[relay.example.org]:587", "smtp_sasl_auth_enable": True},
        "secret_maps": [{"name": "sasl_passwd", "entries": {"[relay.example.org]:587": f"u:{PASSWORD}"}}],
        "packages": ["postfix"],
        "config_dir": str(tmp_path),
    }
    result = run_module(module.main, args, diff=True)
    assert not result.get("failed"), result
    assert result["changed_parts"] == ["sasl_passwd", "main.cf", "service reload"]
    assert PASSWORD not in json.dumps(result)
    assert run_module(module.main, args)["changed"] is False


def test_bad_main_cf_fails_naming_the_parameter(run_module, fake, tmp_path):
    (tmp_path / "main.cf").write_text("")
    result = run_module(module.main, {"main_cf": {"relayhost": "a\u2028b"}, "config_dir": str(tmp_path)})
    assert result["failed"] is True
    assert result["msg"].startswith("settings.relayhost:")


def test_the_journal_line_holds_no_secret(run_module, monkeypatch, tmp_path):
    """AnsibleModule logs its arguments to the host's journal before the module's own code runs."""
    host = FakeHost()
    logged = []
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, args, **kw: host(args))
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: f"/usr/sbin/{name}")
    monkeypatch.setattr(AnsibleModule, "log", lambda self, msg, log_args=None: logged.append((msg, log_args)))
    monkeypatch.setattr(_apply, "SYSTEMD_RUNTIME", str(tmp_path))
    (tmp_path / "main.cf").write_text("")
    args = {
        "main_cf": {"relayhost": "[relay.example.org]:587", "relay_api_key": "Api-K3y-value"},
        "secret_maps": [{"name": "sasl_passwd", "entries": {"[relay.example.org]:587": f"u:{PASSWORD}"}}],
        "config_dir": str(tmp_path),
    }
    result = run_module(module.main, {**args, "main_cf": {**args["main_cf"], "biff": "maybe"}})
    assert result["failed"] is True and "biff" in result["msg"]
    run_module(module.main, args)
    assert logged, "the invocation was logged"
    shown = json.dumps([result, logged])
    assert PASSWORD not in shown and "Api-K3y-value" not in shown
