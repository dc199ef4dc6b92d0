# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole plan in one call: packages, maps, mail name, main.cf and service, with fakes behind the runner."""

from __future__ import annotations

import os

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.apply import (
    _plan_alias_databases,
    apply_plan,
    lock_name,
    missing_packages,
)
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


def run(host, directory, check_mode=False, **overrides):
    options = {
        "main_cf": MAIN_CF,
        "secret_maps": [{"name": "sasl_passwd", "entries": {"[relay.example.org]:587": f"u:{PASSWORD}"}}],
        "maps": [{"name": "sender_canonical", "entries": {"@web1": "noreply@example.org"}}],
        "mailname_file": str(directory / "mailname"),
        "mailname": "example.org",
        "packages": ["postfix"],
        "config_dir": str(directory),
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


def files(directory) -> dict:
    return {p.name: (p.stat().st_mode, p.read_bytes()) for p in sorted(directory.iterdir())}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"main_cf": {**MAIN_CF, "relayhost": "a\nb"}}, "settings.relayhost:"),
        ({"main_cf": {**MAIN_CF, "relayhst": "[r]:587"}}, "settings.relayhst:"),
        ({"maps": [{"name": "generic", "entries": {"@web1": "a@example.org"}}, {"name": "x", "entries": {"a b": "c"}}]},
         "maps[1].entries: key 'a b'"),
        ({"secret_maps": [{"name": "sasl_passwd", "entries": {"[r]:587": " u:pw"}}]}, "secret_maps[0].entries.[r]:587"),
        ({"mailname": "example.org\nrelayhost = evil"}, "mailname 'example.org\\nrelayhost = evil' is not one host"),
    ],
)  # fmt: skip
def test_a_refusal_leaves_every_file_as_it_was(host, tmp_path, overrides, message):
    """Every table, the mail name and main.cf (postconf's staged validation included) are checked before the first
    write: a refusal of any of them, whatever its place, writes nothing."""
    before = files(tmp_path)
    with pytest.raises(SmtpRelayError) as info:
        run(host, tmp_path, **overrides)
    assert info.value.msg.startswith(message)
    assert files(tmp_path) == before
    assert not [c for c in host.called("systemctl") if c[1] not in ("is-active", "is-enabled")]


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ([{"entries": {"a": "b"}}], "maps[0].name is required"),
        ([{"name": 5, "entries": {}}], "maps[0].name 5 must be a plain file name"),
        ([{"name": "a" * 300, "entries": {}}], "maps[0].name has a name longer than 255 bytes"),
        ([{"name": "generic", "entries": {}, "stat": "absent"}], "maps[0]: unknown key(s) 'stat'"),
        ([{"name": "generic", "entries": {}, "state": "gone"}], "maps[0].state 'gone' is not present or absent"),
        ([{"name": "generic", "entries": {}, "type": "dbm"}], "maps[0].type 'dbm' is not supported"),
        (["generic"], "maps[0] must be a mapping of name, entries, state, type, got str"),
        ([{"name": "generic", "entries": {}}, {"name": "generic", "entries": {}}], "maps[1].name: maps[0] is the same"),
    ],
)
def test_tables_are_refused_naming_the_table_and_its_option(host, tmp_path, tables, message):
    with pytest.raises(SmtpRelayError) as info:
        run(host, tmp_path, maps=tables)
    assert info.value.msg.startswith(message)


def test_secret_entries_that_are_not_a_mapping_are_refused(host, tmp_path):
    with pytest.raises(SmtpRelayError, match=r"^secret_maps\[0\]\.entries must be a mapping of key to value"):
        run(host, tmp_path, secret_maps=[{"name": "sasl_passwd", "entries": ["u:pw"]}])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mailname": "a.example\nb"}, "mailname "),
        ({"mailname": "two words.example"}, "mailname "),
        ({"mailname": ""}, "mailname "),
        ({"mailname_file": "mailname"}, "mailname_file 'mailname' must be an absolute path"),
        ({"mailname_file": "/nonexistent-dir/mailname"}, "mailname_file '/nonexistent-dir/mailname' must be"),
        ({"mailname_file": "/etc/mail\x00name"}, "mailname_file contains a NUL character"),
        ({"config_dir": "/" + "d" * 300}, "config_dir has a name longer than 255 bytes"),
    ],
)
def test_the_mail_name_and_paths_are_refused_naming_the_option(host, tmp_path, overrides, message):
    with pytest.raises(SmtpRelayError) as info:
        run(host, tmp_path, **overrides)
    assert info.value.msg.startswith(message)
    assert not (tmp_path / "mailname").exists()


def test_the_mail_name_file_being_a_directory_is_refused_naming_it(host, tmp_path):
    (tmp_path / "mailname").mkdir()
    with pytest.raises(SmtpRelayError, match=r"^mailname_file: .* is a directory"):
        run(host, tmp_path)


def test_a_final_newline_of_the_mail_name_is_written_once(host, tmp_path):
    run(host, tmp_path, mailname="example.org\n")
    assert (tmp_path / "mailname").read_text() == "example.org\n"


class PostmapFailsSecond(FakeHost):
    """postmap builds the first table, then fails: the host failing after the first write."""

    def __call__(self, args):
        if args[0].rsplit("/", 1)[-1] == "postmap" and self.called("postmap"):
            self.calls.append(list(args))
            return 1, "", "postmap: fatal: open database: No space left on device\n"
        return super().__call__(args)


def test_a_failure_of_the_host_after_the_first_write_leaves_main_cf_as_it_was(tmp_path):
    (tmp_path / "main.cf").write_text("")
    with pytest.raises(SmtpRelayError, match=r"postmap .* failed"):
        run(PostmapFailsSecond(), tmp_path)
    assert (tmp_path / "sender_canonical.db").exists(), "the table built before the failure stays, whole"
    assert not (tmp_path / "sasl_passwd").exists()
    assert (tmp_path / "main.cf").read_text() == ""
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "no temporary file is left"
    again = run(FakeHost(), tmp_path)
    assert again["changed_parts"][:2] == ["sasl_passwd", str(tmp_path / "mailname")], "the next run finishes"


def test_the_lock_name_stays_a_file_name_for_a_long_directory():
    assert lock_name("/etc/postfix") == "smtp-relay-postfix-etc-postfix"
    long = [lock_name("/srv/" + "x" * 4000 + suffix) for suffix in ("a", "b")]
    assert all(len(name) <= 200 for name in long) and long[0] != long[1]


def test_a_missing_or_stale_alias_database_is_built_and_postfix_reloaded(tmp_path, monkeypatch):
    """Debian's "No configuration" install leaves /etc/aliases without its .db: a satellite would defer all local
    mail. postfix_apply builds it when missing or older than the source, and not again when current."""
    aliases = tmp_path / "aliases"
    aliases.write_text("webmaster: ops@example.org\n")
    calls = []

    class Runner:
        def run(self, binary, args, mask=str):
            calls.append([binary, *args])
            (tmp_path / "aliases.db").write_text("built")
            return "", ""

    steps = _plan_alias_databases(Runner(), [f"hash:{aliases}"], "/etc/postfix", check_mode=True)
    assert [(part, planned.result["changed"], planned.write) for part, planned in steps] == [
        (f"aliases hash:{aliases}", True, None)
    ]
    steps = _plan_alias_databases(Runner(), [f"hash:{aliases}"], "/etc/postfix", check_mode=False)
    steps[0][1].write()
    assert calls == [["postalias", "-c", "/etc/postfix", f"hash:{aliases}"]]
    assert not _plan_alias_databases(Runner(), [f"hash:{aliases}"], "/etc/postfix", check_mode=False)[0][1].result[
        "changed"
    ]
    assert _plan_alias_databases(Runner(), [f"hash:{tmp_path / 'none'}"], "/etc/postfix", check_mode=False) == []


@pytest.mark.parametrize("reference", ["/etc/aliases", "regexp:/etc/aliases", "hash:aliases", "hash:/etc/a\nb"])
def test_an_alias_database_that_is_not_type_and_absolute_path_is_refused(reference):
    with pytest.raises(SmtpRelayError, match=r"alias_databases\[0\]"):
        _plan_alias_databases(None, [reference], "/etc/postfix", check_mode=True)
