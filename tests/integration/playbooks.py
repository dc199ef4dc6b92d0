# SPDX-License-Identifier: GPL-3.0-or-later
"""Playbooks kept next to their tests: a YAML inventory with groups, and every task's result per host.

The playbooks only act and register; the tests read the results and assert, so each promise is one pytest test
and a run is shared by the tests of a module. Runs go through ``fleet.play`` (JSON callback).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.integration import fleet


@dataclass
class Run:
    rc: int
    changed: dict  # {host: [names of the tasks that changed]}
    output: str
    tasks: dict  # {task name: {host: result}}

    def result(self, task: str, host: str) -> dict:
        try:
            return self.tasks[task][host]
        except KeyError:
            raise AssertionError(f"no result of {task!r} on {host} in the run:\n{self.output}") from None

    def items(self, task: str, host: str) -> list[dict]:
        """The per-item results of a loop task."""
        return self.result(task, host)["results"]


def inventory(workdir: Path, hosts: dict, groups: dict | None = None, variables: dict | None = None) -> Path:
    """``hosts`` {name: host vars}, ``groups`` {group: [names]}, ``variables`` for all hosts (below host vars)."""
    children = {group: {"hosts": dict.fromkeys(members)} for group, members in (groups or {}).items()}
    document = {"all": {"hosts": hosts, "vars": variables or {}, "children": children}}
    path = workdir / "inventory.yml"
    path.write_text(yaml.safe_dump(document))
    path.chmod(0o600)
    return path


def run(workdir: Path, hosts, playbook, *options, inventory: Path, check_mode: bool = False) -> Run:
    """Run ``playbook`` (a path or a collection playbook name) with the inventory alone: no extra vars, which would
    override the inventory's host vars."""
    rc, changed, output = fleet.play(
        workdir, list(hosts), str(playbook), {}, *options, check_mode=check_mode, inventory=inventory
    )
    return Run(rc, changed, output, task_results(output))


def task_results(output: str) -> dict:
    """{task name: {host: result}} from the JSON callback's document; a name used twice keeps its last run."""
    start = output.find("{")
    if start < 0:
        return {}
    try:
        document, _end = json.JSONDecoder().raw_decode(output[start:])
    except json.JSONDecodeError:
        return {}
    return {task["task"]["name"]: task["hosts"] for play in document.get("plays", []) for task in play["tasks"]}
