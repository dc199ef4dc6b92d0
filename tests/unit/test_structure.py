# SPDX-License-Identifier: GPL-3.0-or-later
"""The shape of plugins/module_utils that issue "one seam per concern" asks for, checked on every run.

- The import graph between module_utils files is acyclic (the tool library's drawing does not resolve
  ``ansible_collections.`` imports, so the graph is built here from the source).
- module_utils import nothing from Ansible, and every import of the collection is absolute.
- No file is much over 400 lines unless its header says why ("on purpose").
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"
MODULE_UTILS = PLUGINS / "module_utils"
PACKAGE = "ansible_collections.smtp.relay.plugins.module_utils"
LONGEST = 440


def dotted(path: Path) -> str:
    parts = path.relative_to(MODULE_UTILS).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


FILES = {dotted(p): p for p in MODULE_UTILS.rglob("*.py")}


def imports(path: Path) -> list[ast.ImportFrom | ast.Import]:
    return [n for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Import | ast.ImportFrom)]


def edges(name: str) -> set[str]:
    """module_utils files that ``name`` imports (``from P.pkg import mod`` counts as importing ``pkg.mod``)."""
    found = set()
    for node in imports(FILES[name]):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE):
            base = node.module[len(PACKAGE) :].lstrip(".")
            for alias in node.names:
                candidate = f"{base}.{alias.name}".lstrip(".")
                found.add(candidate if candidate in FILES else base)
    return found - {""}


def test_the_import_graph_is_acyclic():
    graph = {name: edges(name) for name in FILES}
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(graph.get(name, ())):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*path, name, target])
            if target not in state:
                visit(target, [*path, name])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [])
    assert sum(len(v) for v in graph.values()) > 40, "the graph was not read (no edges found)"


@pytest.mark.parametrize("name", sorted(FILES))
def test_module_utils_are_pure_python_with_absolute_imports(name):
    for node in imports(FILES[name]):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{name}: relative import"
            module = node.module or ""
        else:
            module = node.names[0].name
        assert not (module == "ansible" or module.startswith("ansible.")), f"{name} imports {module}"


@pytest.mark.parametrize("path", sorted(PLUGINS.rglob("*.py")), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_no_file_is_long_without_saying_why(path):
    text = path.read_text()
    if path.parent.name in ("modules", "doc_fragments"):
        # A module's length is its documentation; the code below it is a few lines.
        text = text[text.rfind('"""') :]
    lines = text.count("\n")
    assert lines <= LONGEST or "on purpose" in (ast.get_docstring(ast.parse(path.read_text())) or ""), (
        f"{path.name}: {lines} lines"
    )
