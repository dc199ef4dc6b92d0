# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole plan in one call: packages, maps, mail name, main.cf and service, with fakes behind the runner."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._postfix.apply import apply_plan, missing_packages
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from tests.unit.plugins.module_utils.postfix_fake import FakePostfix

PASSWORD = "pa55-w0rd"
MAIN_CF = {"relayhost": "[relay.example.org]:587", "inet_interfaces": "loopback-only", "myorigin": "example.org"}


class FakeHost(FakePostfix):
    """FakePostfix plus dpkg-query and systemctl."""

    def __init__(self, installed=("postfix",), active=True, enabled=True):
        super().__init__()
        self.installed, self.active, self.enabled = set(installed), active, enabled

    def __call__(self, args):
        name = args[0].rsplit("/", 1)[-1]
        if name == "dpkg-query":
            self.calls.append(list(args))
            lines = [f"{p} ii " for p in args[3:] if p in self.installed]
            return (0 if len(lines) == len(args) - 3 else 1), "\n".join(lines) + "\n", ""
        if name == "systemctl":
            self.calls.append(list(args))
            verb = args[1]
            if verb == "is-active":
                return (0 if self.active else 3), "", ""
            if verb == "is-enabled":
                return (0 if self.enabled else 1), "", ""
            self.active = self.active or verb in ("start", "restart")
            self.enabled = self.enabled or verb == "enable"
            return 0, "", ""
        return super().__call__(args)


@pytest.fixture
def host(tmp_path):
    (tmp_path / "main.cf").write_text("")
    return FakeHost()


def run(host, config_dir, check_mode=False, **overrides):
    options = {
        "main_cf": MAIN_CF,
        "secret_maps": [{"name": "sasl_passwd", "entries": {"[relay.example.org]:587": f"u:{PASSWORD}"}}],
        "maps": [{"name": "sender_canonical", "entries": {"@web1": "noreply@example.org"}}],
        "mailname_file": str(config_dir / "mailname"),
        "mailname": "example.org",
        "packages": ["postfix"],
        "config_dir": str(config_dir),
        "check_mode": check_mode,
        "systemd": True,
        **overrides,
    }
    return apply_plan(PostconfRunner(host), **options)


def test_first_run_changes_everything_then_nothing(host, tmp_path):
    first = run(host, tmp_path)
    assert first["changed"] is True
    assert first["changed_parts"] == [
        "sender_canonical",
        "sasl_passwd",
        str(tmp_path / "mailname"),
        "main.cf",
        "service restart",
    ], "inet_interfaces needs a restart, not a reload"
    assert (tmp_path / "mailname").read_text() == "example.org\n"
    assert PASSWORD not in repr(first)
    again = run(host, tmp_path)
    assert (again["changed"], again["changed_parts"], again["service"]["actions"]) == (False, [], [])


def test_check_mode_predicts_the_run_and_writes_nothing(host, tmp_path):
    predicted = run(host, tmp_path, check_mode=True)
    assert not (tmp_path / "sasl_passwd").exists()
    assert not (tmp_path / "mailname").exists()
    assert (tmp_path / "main.cf").read_text() == ""
    assert not [c for c in host.called("systemctl") if c[1] not in ("is-active", "is-enabled")]
    assert run(host, tmp_path)["changed_parts"] == predicted["changed_parts"]


def test_a_missing_package_stops_before_anything_is_touched(tmp_path):
    host = FakeHost(installed=())
    (tmp_path / "main.cf").write_text("")
    result = run(host, tmp_path, packages=["postfix", "libsasl2-modules"])
    assert result["missing_packages"] == ["postfix", "libsasl2-modules"]
    assert result["changed"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.cf"]
    assert host.called("postconf") == []


def test_a_stopped_service_is_started_and_enabled(tmp_path):
    host = FakeHost(active=False, enabled=False)
    (tmp_path / "main.cf").write_text("")
    run(host, tmp_path)
    assert (host.active, host.enabled) == (True, True)
    again = run(host, tmp_path)
    assert again["service"]["actions"] == []


def test_a_main_cf_change_without_restart_parameters_reloads(host, tmp_path):
    run(host, tmp_path)
    changed = run(host, tmp_path, main_cf={**MAIN_CF, "myorigin": "example.net"})
    assert changed["service"]["actions"] == ["reload"]
    assert changed["main_cf"]["changed_parameters"] == ["myorigin"]


def test_missing_packages_are_asked_in_one_command():
    host = FakeHost(installed=("postfix",))
    assert missing_packages(PostconfRunner(host), ["postfix", "libsasl2-modules"]) == ["libsasl2-modules"]
    assert len(host.called("dpkg-query")) == 1


def test_a_package_that_left_no_main_cf_gets_an_empty_one_first(tmp_path):
    """Debian's "No configuration" leaves no main.cf; postmap and postconf -c need one before the maps."""
    host = FakeHost()
    predicted = run(host, tmp_path, check_mode=True)
    assert not (tmp_path / "main.cf").exists(), "check mode creates nothing"
    done = run(host, tmp_path)
    assert done["changed_parts"] == predicted["changed_parts"]
    assert "main.cf" in done["changed_parts"]
    assert oct((tmp_path / "main.cf").stat().st_mode & 0o777) == "0o644"
    assert "inet_interfaces = loopback-only" in (tmp_path / "main.cf").read_text()
