# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() in-process with given arguments and return its JSON result."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from tests.unit.plugins.module_utils.postfix_fake import FakePostfix


class ModuleResult(dict):
    """The module's result; ``failed`` is true when it called fail_json."""


@pytest.fixture
def run_module(capsys):
    """run_module(main, args, check_mode=False, diff=False) -> the result dict (exit_json or fail_json)."""

    def run(main, args, check_mode=False, diff=False):
        args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": diff}
        with patch_module_args(args), pytest.raises(SystemExit):
            main()
        return ModuleResult(json.loads(capsys.readouterr().out))

    return run


@pytest.fixture
def fake(monkeypatch):
    """A fake postconf/postmap answering every AnsibleModule.run_command of the module under test."""
    fake = FakePostfix()
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, args, **kw: fake(args))
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: f"/usr/sbin/{name}")
    return fake
