# SPDX-License-Identifier: GPL-3.0-or-later
"""The unit suite is hermetic by construction: on a controller with Postfix, every way of reaching it fails loudly.

The controller with Postfix is played by Debian-like fake programs first on PATH (hermetic.write_controller_postfix);
/etc/postfix and the SASL plugin directories are refused by path whether or not they exist here.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible.module_utils.common.process import get_bin_path

from ansible_collections.smtp.relay.plugins.filter._relay_settings import FilterModule as RelaySettings
from ansible_collections.smtp.relay.plugins.module_utils._probe import relay_check as _relaycheck
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner, read_effective
from tests.unit import bootstrap, hermetic
from tests.unit.plugins.module_utils.postfix_fake import FakePostfix


@pytest.mark.parametrize(
    "reach",
    [
        pytest.param(lambda: shutil.which("postconf"), id="shutil.which"),
        pytest.param(lambda: get_bin_path("postmap", opt_dirs=["/usr/sbin", "/sbin"]), id="get_bin_path"),
        pytest.param(lambda: subprocess.run(["postqueue", "-j"], check=False), id="subprocess-bare-name"),
        pytest.param(lambda: subprocess.run("postfix status", shell=True, check=False), id="subprocess-shell"),
        pytest.param(lambda: os.system("sendmail -t </dev/null"), id="os.system"),
        pytest.param(lambda: subprocess.run(["/usr/sbin/postconf", "-d"], check=False), id="absolute-path"),
    ],
)
def test_postfix_programs_on_the_controller_are_refused(controller_with_postfix, reach):
    with hermetic.expect_reached():
        reach()


def test_programs_missing_from_the_controller_are_refused_too():
    # "Not installed" is the controller's answer as much as "installed": a test must not depend on either.
    with hermetic.expect_reached():
        subprocess.run(["postconf", "-d"], env={"PATH": "/nonexistent"}, check=False)


@pytest.mark.parametrize(
    "reach",
    [
        pytest.param(lambda: os.path.exists("/etc/postfix/main.cf"), id="exists"),
        pytest.param(lambda: open("/etc/postfix/main.cf", encoding="utf-8"), id="open"),  # noqa: SIM115
        pytest.param(lambda: os.listdir("/etc/postfix"), id="listdir"),
        pytest.param(lambda: os.path.isdir("/etc/postfix-out"), id="postmulti-instance"),
        pytest.param(lambda: glob.glob("/usr/lib/*/sasl2"), id="glob-sasl2"),
        pytest.param(lambda: os.scandir("/usr/lib/sasl2"), id="scandir-sasl2"),
        pytest.param(lambda: os.stat("/var/spool/postfix/deferred"), id="queue"),
        pytest.param(lambda: read_effective(PostconfRunner(FakePostfix())), id="default-config_dir"),
    ],
)
def test_the_controllers_postfix_files_are_refused(reach):
    with hermetic.expect_reached():
        reach()


def test_a_swallowed_refusal_still_fails_the_test():
    with pytest.raises(hermetic.ControllerPostfixReached):
        try:
            os.path.exists("/etc/postfix/main.cf")
        except BaseException:  # what a careless `except BaseException` in the code under test would do
            assert hermetic.take_reached(), "the refusal was not recorded"
            raise


def test_programs_a_test_installs_itself_are_allowed(tmp_path, monkeypatch):
    fake = tmp_path / "postconf"
    fake.write_text("#!/bin/sh\necho mail_version = 3.9.0\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with hermetic.allow(tmp_path):
        assert shutil.which("postconf") == str(fake)
        run = subprocess.run(["postconf"], capture_output=True, text=True, check=True)
        assert run.stdout == "mail_version = 3.9.0\n"


def test_the_guard_is_off_outside_unit_tests():
    with hermetic.armed(False):
        os.path.exists("/etc/postfix/main.cf")
        shutil.which("postconf")
    assert not hermetic.take_reached()


def test_armed_for_unit_tests_only(request):
    class Item:
        def __init__(self, path, peers=False):
            self.path, self.peers = path, peers

        def get_closest_marker(self, name):
            return pytest.mark.peers.mark if self.peers and name == "peers" else None

    assert hermetic.applies_to(request.node)
    assert not hermetic.applies_to(Item(hermetic.UNIT / "peers" / "test_relay.py", peers=True))
    assert not hermetic.applies_to(Item(bootstrap.ROOT / "tests" / "integration" / "role" / "test_role.py"))


def test_sasl_plugins_come_from_the_tests_tree(sasl_plugin_dirs):
    assert _relaycheck.sasl_plugins() is None  # the default: no plugin directory at all
    plugins = sasl_plugin_dirs / "x86_64-linux-gnu" / "sasl2"
    plugins.mkdir(parents=True)
    for name in ("libplain.so.2", "liblogin.so", "libsasldb.so.2"):
        (plugins / name).touch()
    assert _relaycheck.sasl_plugins() == ["login", "plain", "sasldb"]


# -- the collection imports from this work tree, without make and without private Ansible APIs ------------------


def test_the_collection_is_this_work_tree():
    link = bootstrap.COLLECTIONS / "ansible_collections" / "smtp" / "relay"
    assert link.is_symlink() and not os.path.isabs(os.readlink(link))
    assert link.resolve() == bootstrap.ROOT
    assert (
        Path(_relaycheck.__file__).resolve()
        == bootstrap.ROOT / "plugins" / "module_utils" / "_probe" / "relay_check.py"
    )
    assert RelaySettings().filters()


def test_linking_again_is_idempotent_and_leaves_nothing_behind():
    before = sorted(os.listdir(bootstrap.COLLECTIONS / "ansible_collections" / "smtp"))
    bootstrap.link_collection(bootstrap.COLLECTIONS)
    assert sorted(os.listdir(bootstrap.COLLECTIONS / "ansible_collections" / "smtp")) == before == ["relay"]


def test_linking_races_leave_one_good_link(tmp_path):
    # Several pytest processes starting at once (two engineers, xdist) all create the link.
    top = tmp_path / "collections"
    code = f"import pathlib, tests.unit.bootstrap as b; b.link_collection(pathlib.Path({str(top)!r}))"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=bootstrap.ROOT) for _racer in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    assert sorted(os.listdir(top / "ansible_collections" / "smtp")) == ["relay"]
    assert (top / "ansible_collections" / "smtp" / "relay").resolve() == bootstrap.ROOT
