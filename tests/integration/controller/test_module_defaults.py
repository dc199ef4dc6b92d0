# SPDX-License-Identifier: GPL-3.0-or-later
"""module_defaults for group/smtp.relay.relay in a real play (module_defaults.yml), on the controller."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

pytestmark = pytest.mark.peers

HOST = "localhost"


@pytest.fixture(scope="module")
def play(run_on_controller):
    done = run_on_controller("module_defaults.yml")
    instance = done.result("Make a directory that stands for another Postfix instance's configuration", HOST)["path"]
    return done, instance, lambda task: done.result(task, HOST)


def test_check_mode_predicts_the_directory_the_group_gives(play):
    _done, instance, result = play
    assert result("Predict a table by name, without config_dir")["path"] == f"{instance}/sender_canonical"


def test_the_groups_default_reaches_the_module(play):
    _done, instance, result = play
    by_group = result("Write a table by name, without config_dir")
    assert by_group["changed"]
    assert by_group["path"] == f"{instance}/sender_canonical"
    table = base64.b64decode(result("Read the table the group's default put in place")["content"]).decode()
    assert table.splitlines()[-1] == "root noreply@example.org"


def test_the_tasks_own_value_wins(play):
    _done, instance, result = play
    assert result("Write a table with config_dir given on the task")["path"] == f"{instance}/explicit/sender_canonical"


def test_a_module_outside_the_group_is_left_alone(play):
    _done, _instance, result = play
    outside = result("Check a sender domain with a module outside the group")
    assert not outside.get("failed"), outside
    assert outside["valid"] is False


def test_the_directory_is_removed(play):
    _done, instance, _result = play
    assert not Path(instance).exists()
