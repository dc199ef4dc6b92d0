# SPDX-License-Identifier: GPL-3.0-or-later
"""The action group of meta/runtime.yml against the modules' documentation as Ansible merges it (doc fragments in).

Ansible gives a group's module_defaults to every module of the group, unfiltered: every member must take the option
the group exists for. tests/integration/controller/test_module_defaults.py runs a play with the group's defaults.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.plugins.loader import fragment_loader
from ansible.utils.plugin_docs import get_docstring

ROOT = Path(__file__).resolve().parents[4]
MODULES = sorted(p.stem for p in (ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
GROUP = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["action_groups"]["relay"]


def merged_doc(module: str) -> dict:
    path = ROOT / "plugins" / "modules" / f"{module}.py"
    doc, _examples, _returns, _metadata = get_docstring(
        str(path), fragment_loader, collection_name="smtp.relay", is_module=True
    )
    return doc


def test_the_group_is_the_modules_that_take_config_dir():
    assert sorted(GROUP) == GROUP
    assert set(GROUP) <= set(MODULES)
    assert [m for m in MODULES if "config_dir" in merged_doc(m)["options"]] == GROUP
    assert "sender_check" not in GROUP


@pytest.mark.parametrize("module", MODULES)
def test_each_module_says_whether_it_is_in_the_group(module):
    attributes = merged_doc(module)["attributes"]
    if module in GROUP:
        assert attributes["action_group"]["membership"] == ["smtp.relay.relay"]
        assert attributes["action_group"]["support"] == "full"
    else:
        assert "action_group" not in attributes


@pytest.mark.parametrize("module", MODULES)
def test_shared_attributes_come_whole_from_the_fragments(module):
    attributes = merged_doc(module)["attributes"]
    for name in ("check_mode", "diff_mode", "platform"):
        assert attributes[name]["description"], name  # ansible.builtin.action_common_attributes
        assert attributes[name]["support"] in ("full", "none", "N/A"), name
    assert attributes["check_mode"]["support"] == "full"
    assert attributes["platform"]["platforms"] == "posix"
    without_diff = module in ("mail_test", "relay_check", "relay_info", "sender_check")  # read only, or sends mail
    assert attributes["diff_mode"]["support"] == ("none" if without_diff else "full")
