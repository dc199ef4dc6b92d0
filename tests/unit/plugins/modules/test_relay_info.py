# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.relay_info through AnsibleModule, with the Postfix binaries faked."""

from __future__ import annotations

import os

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.modules import relay_info as module
from tests.unit.plugins.module_utils.postfix_fake import FakePostfix

# Each test runs on the controller as it is and as if it had Postfix installed (conftest's controller fixture).
pytestmark = pytest.mark.usefixtures("controller")


@pytest.fixture
def host(monkeypatch):
    fake = FakePostfix()

    def run(self, args, **kw):
        name = os.path.basename(args[0])
        if name == "postfix":
            return 0, "", "the Postfix mail system is running\n"
        if name == "postqueue":
            return 0, '{"queue_name": "deferred", "arrival_time": 1, "recipients": []}\n', ""
        return fake(args)

    monkeypatch.setattr(AnsibleModule, "run_command", run)
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: f"/usr/sbin/{name}")
    return fake


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "main.cf").write_text("relayhost = [smtp.example.org]:587\ninet_interfaces = loopback-only\n")
    return tmp_path


def test_facts(run_module, host, config_dir):
    result = run_module(module.main, {"config_dir": str(config_dir)}, check_mode=True)
    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["relay"]["relayhost"] == "[smtp.example.org]:587"
    assert result["relay"]["relayhosts"][0]["host"] == "smtp.example.org"
    assert result["relay"]["service_running"] is True
    assert result["relay"]["queue"]["deferred"] == 1
    assert result["mismatches"] == []


def test_expect_fails_listing_every_mismatch(run_module, host, config_dir):
    expect = {"relayhost": "[smtp.example.org]:465", "queue.deferred": 0, "mode": "null_client"}
    result = run_module(module.main, {"config_dir": str(config_dir), "expect": expect})
    assert result["failed"] is True
    assert result["mismatches"] == [
        "mode: expected null_client, found satellite",
        "queue.deferred: expected 0, found 1",
        "relayhost: expected [smtp.example.org]:465, found [smtp.example.org]:587",
    ]
    assert result["msg"].startswith("3 setting(s) differ from what was expected: mode: expected null_client")


def test_no_postfix(run_module, monkeypatch):
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: None)
    result = run_module(module.main, {})
    assert not result.get("failed"), result
    assert result["relay"]["postfix_installed"] is False
