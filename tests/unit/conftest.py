# SPDX-License-Identifier: GPL-3.0-or-later
"""Plain ``pytest tests/unit`` works in a fresh clone (bootstrap.py), and no unit test reaches the controller's own
Postfix (hermetic.py): the guard is armed for every test under tests/unit not marked ``peers``."""

from __future__ import annotations

import os
import secrets

import pytest

from tests.unit import bootstrap, hermetic

bootstrap.configure()
hermetic.install()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # Called for every item of the session (tests/integration too): armed for unit tests only, set-up to tear-down.
    with hermetic.armed(hermetic.applies_to(item)):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    reached = hermetic.take_reached()
    if reached and report.passed:
        # The code under test caught ControllerPostfixReached (or turned it into its own failure): still a failure.
        report.outcome = "failed"
        report.longrepr = "\n".join(dict.fromkeys(reached))
    return report


@pytest.fixture(autouse=True)
def sasl_plugin_dirs(monkeypatch, tmp_path_factory):
    """relay_check's Cyrus SASL plugin directories, moved off the controller to a fresh (absent) temporary /usr/lib.

    sasl_plugins() then answers None (no plugin directory: not known). A test that wants plugins creates
    ``<returned dir>/<arch>/sasl2/lib<name>.so`` files.
    """
    from ansible_collections.smtp.relay.plugins.module_utils._probe import relay_check as _relaycheck

    usr_lib = tmp_path_factory.getbasetemp() / "controller" / secrets.token_hex(8) / "usr" / "lib"
    patterns = (str(usr_lib / "*" / "sasl2"), str(usr_lib / "sasl2"))
    monkeypatch.setattr(_relaycheck, "SASL_PLUGIN_DIRS", patterns)
    # sasl_plugins(patterns=SASL_PLUGIN_DIRS) bound the tuple when it was defined: repoint its default too.
    monkeypatch.setattr(_relaycheck.sasl_plugins, "__defaults__", (patterns,))
    return usr_lib


@pytest.fixture
def controller_with_postfix(tmp_path_factory, monkeypatch):
    """The controller as if it had Postfix: Debian-like fake programs first on PATH, which must never run (the guard
    refuses any look-up of them, and they log any run). Returns their directory."""
    sbin = tmp_path_factory.mktemp("controller") / "usr" / "sbin"
    log = hermetic.write_controller_postfix(sbin)
    monkeypatch.setenv("PATH", f"{sbin}{os.pathsep}{os.environ.get('PATH', os.defpath)}")
    yield sbin
    assert not log.read_text(), f"the test ran the controller's Postfix programs:\n{log.read_text()}"


@pytest.fixture(params=["as-is", "with-postfix"])
def controller(request):
    """Runs a test twice, on the controller as it is and as if it had Postfix: the same assertions must hold."""
    if request.param == "with-postfix":
        request.getfixturevalue("controller_with_postfix")
    return request.param


@pytest.fixture(autouse=True)
def lock_dir(monkeypatch, tmp_path_factory):
    """The apply step's per-host lock files go to a temporary directory, not the controller's /run/lock."""
    from ansible_collections.smtp.relay.plugins.module_utils import _files  # importable once bootstrap ran

    directory = tmp_path_factory.mktemp("lock")
    monkeypatch.setattr(_files, "LOCK_DIRS", (str(directory),))
    return directory
