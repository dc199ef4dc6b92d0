# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.postfix_map through AnsibleModule, with the Postfix binaries faked."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.smtp.relay.plugins.modules import postfix_map as module


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "main.cf").write_text("relayhost = [relay.example.org]:587\n")
    return tmp_path


SECRET_ARGS = {"name": "sasl_passwd", "secret": True, "entries": {"[relay.example.org]:587": "user:Very-S3cret"}}


def test_secret_map_is_masked_and_idempotent(run_module, fake, config_dir):
    args = {**SECRET_ARGS, "config_dir": str(config_dir)}
    result = run_module(module.main, args, diff=True)
    assert not result.get("failed"), result
    assert result["changed"] is True
    assert result["map"] == f"hash:{config_dir}/sasl_passwd"
    assert "Very-S3cret" not in json.dumps(result)
    assert stat.S_IMODE(os.stat(config_dir / "sasl_passwd.db").st_mode) == 0o600
    assert fake.called("postmap")[0][0] == "/usr/sbin/postmap"

    assert run_module(module.main, args)["changed"] is False


def test_check_mode(run_module, fake, config_dir):
    result = run_module(module.main, {**SECRET_ARGS, "config_dir": str(config_dir)}, check_mode=True)
    assert result["changed"] is True
    assert not (config_dir / "sasl_passwd").exists()


def test_bad_key_fails_naming_it(run_module, fake, config_dir):
    args = {"name": "generic", "entries": {"two words": "x"}, "config_dir": str(config_dir)}
    result = run_module(module.main, args)
    assert result["failed"] is True
    assert "'two words'" in result["msg"]
    assert result["key"] == "two words"


def test_name_and_path_are_exclusive(run_module, fake, config_dir):
    result = run_module(module.main, {"name": "a", "path": "/tmp/a", "entries": {"a": "b"}})
    assert result["failed"] is True
    assert "mutually exclusive" in result["msg"]


def test_entries_required_when_present(run_module, fake, config_dir):
    result = run_module(module.main, {"name": "a", "config_dir": str(config_dir)})
    assert result["failed"] is True
    assert "entries" in result["msg"]


def test_absent_removes(run_module, fake, config_dir):
    args = {"name": "generic", "entries": {"root": "noreply@example.org"}, "config_dir": str(config_dir)}
    run_module(module.main, {**args, "type": "lmdb"})
    assert (config_dir / "generic.lmdb").exists()
    result = run_module(module.main, {"name": "generic", "state": "absent", "config_dir": str(config_dir)})
    assert result["changed"] is True
    assert sorted(p.name for p in config_dir.iterdir()) == ["main.cf"]
