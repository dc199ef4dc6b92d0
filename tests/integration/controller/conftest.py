# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller as the managed host, for the playbooks of this directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration import playbooks

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def run_on_controller(tmp_path_factory):
    """Run a playbook of this directory on localhost, with the controller's Python (the venv's, as ansible-test did)."""

    def run(name: str) -> playbooks.Run:
        workdir = tmp_path_factory.mktemp(Path(name).stem)
        local = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
        inventory = playbooks.inventory(workdir, {"localhost": local})
        done = playbooks.run(workdir, ["localhost"], HERE / name, inventory=inventory)
        assert done.rc == 0, done.output
        return done

    return run
