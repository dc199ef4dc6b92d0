# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``checks`` return value is one schema in every module that returns it.

Ansible's doc fragments extend DOCUMENTATION only (``plugin_docs.add_fragments``), not RETURN, so the shared part
of ``checks`` cannot live in ``plugins/doc_fragments``. This test is its single source instead: the common fields
are written here once and every module's RETURN must say exactly the same about them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

MODULES = Path(__file__).resolve().parents[4] / "plugins" / "modules"
STATUSES = "V(pass), V(warn), V(fail), V(unknown) or V(skip)."
COMMON = {
    "id": {"description": "Stable dotted id.", "type": "str"},
    "status": {"description": STATUSES, "type": "str"},
    "message": {"description": "What was found.", "type": "str"},
    "hint": {"description": "What to do about it, or null.", "type": "str"},
    "stage": {"type": "str"},
}


def returns(path: Path) -> dict:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "RETURN":
            return yaml.safe_load(node.value.value) or {}
    raise AssertionError(f"{path.name} has no RETURN")


def checks_entries(docs: dict, path: str = "") -> dict:
    """Every ``checks`` list in a RETURN tree (sender_check nests them under each domain), by dotted path."""
    found = {}
    for key, spec in docs.items():
        where = f"{path}{key}"
        if key == "checks":
            found[where] = spec
        if isinstance(spec, dict) and isinstance(spec.get("contains"), dict):
            found.update(checks_entries(spec["contains"], where + "."))
    return found


WITH_CHECKS = sorted(p.name for p in MODULES.glob("*.py") if checks_entries(returns(p)))


def test_the_modules_that_report_checks_are_known():
    assert WITH_CHECKS == ["allowlist_request.py", "mail_test.py", "relay_check.py", "sender_check.py"]


@pytest.mark.parametrize("name", WITH_CHECKS)
def test_checks_share_one_schema(name):
    for where, checks in checks_entries(returns(MODULES / name)).items():
        assert checks["type"] == "list" and checks["elements"] == "dict", f"{name}: {where}"
        for field, spec in COMMON.items():
            documented = checks["contains"][field]
            for key, value in spec.items():
                assert documented[key] == value, f"{name}: {where}.{field}.{key}"
