# SPDX-License-Identifier: GPL-3.0-or-later
"""What runs on managed hosts runs on their Python: 3.9 on Debian 11 (the oldest release the role supports).

The controller needs 3.11, so ruff's target is py311 and it would happily rewrite code into forms that 3.9 cannot
run. Modules and module_utils travel to the host, so they are parsed here as 3.9 grammar, and the three 3.10+/3.11+
runtime forms that parse fine but fail on 3.9 (found on a real Debian 11 host) are looked for by name.
tests/integration/releases runs the modules on a real Debian 11 host.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST_CODE = sorted([*(ROOT / "plugins" / "module_utils").rglob("*.py"), *(ROOT / "plugins" / "modules").glob("*.py")])
OLDEST = (3, 9)


def newer_runtime_forms(tree: ast.AST) -> list[str]:
    """(line: form) for each use that parses on 3.9 but fails when it runs there."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            union = (
                len(node.args) == 2 and isinstance(node.args[1], ast.BinOp) and isinstance(node.args[1].op, ast.BitOr)
            )
            if node.func.id in ("isinstance", "issubclass") and union:
                found.append(f"{node.lineno}: {node.func.id}() with X | Y (3.10+)")
            if node.func.id == "zip" and any(k.arg == "strict" for k in node.keywords):
                found.append(f"{node.lineno}: zip(strict=) (3.10+)")
        if isinstance(node, ast.Attribute) and node.attr == "UTC" and getattr(node.value, "id", "") == "datetime":
            found.append(f"{node.lineno}: datetime.UTC (3.11+; use datetime.timezone.utc)")
    return found


@pytest.mark.parametrize("path", HOST_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_host_code_runs_on_the_oldest_host_python(path):
    source = path.read_text()
    tree = ast.parse(source, filename=str(path), feature_version=OLDEST)
    assert newer_runtime_forms(tree) == []


def test_the_guard_sees_each_form():
    sample = ast.parse(
        "import datetime\nisinstance(x, int | str)\nzip(a, b, strict=True)\ndatetime.datetime.now(datetime.UTC)\n"
    )
    assert len(newer_runtime_forms(sample)) == 3
    with pytest.raises(SyntaxError):
        ast.parse("match x:\n    case 1:\n        pass\n", feature_version=OLDEST)
