# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() in-process with given arguments and return its JSON result."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args


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
