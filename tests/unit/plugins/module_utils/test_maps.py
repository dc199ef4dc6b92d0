# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import (
    HEADER,
    ensure_map,
    index_path,
    is_stale,
    masked_view,
    parse_map,
    plan_map,
    render_map,
    validate_entries,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import MASK
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from tests.unit.plugins.module_utils.postfix_fake import DEFAULTS, FakePostfix, read_index

SASL = {"[relay.example.org]:587": "user:pa ss w0rd", "[backup.example.org]:465": "user2:0therSecret"}


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "main.cf").write_text("relayhost = [relay.example.org]:587\n")
    return tmp_path


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def listing(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- pure parts ----------------------------------------------------------------------------------------


def test_render_is_sorted_stable_and_parses_back():
    text = render_map({"b": "2", "a": "x y", "c": 3})
    assert text == HEADER + "a x y\nb 2\nc 3\n"
    assert render_map({"c": 3, "a": "x y", "b": "2"}) == text
    assert parse_map(text) == {"a": "x y", "b": "2", "c": "3"}


def test_parse_map_skips_comments_blank_and_indented_lines():
    assert parse_map("# c\n\nkey\tvalue here \n  cont\nbare\n") == {"key": "value here", "bare": ""}


@pytest.mark.parametrize(
    ("map_type", "suffix"), [("hash", ".db"), ("btree", ".db"), ("lmdb", ".lmdb"), ("cdb", ".cdb"), ("texthash", None)]
)
def test_index_path_follows_the_type(map_type, suffix):
    assert index_path("/etc/postfix/x", map_type) == (None if suffix is None else "/etc/postfix/x" + suffix)


@pytest.mark.parametrize("key", ["two words", "tab\tkey", "new\nline", "#comment", ""])
def test_bad_keys_are_refused_by_name(key):
    with pytest.raises(SmtpRelayError, match=r"entries: key .* (whitespace|non-empty)") as info:
        validate_entries({key: "v"})
    assert info.value.details == {"key": key}


@pytest.mark.parametrize("value", ["s3cret\nbreak", " s3cret", "s3cret ", "", "s3cret\x07"])
def test_bad_secret_values_are_refused_without_showing_them(value):
    with pytest.raises(SmtpRelayError, match=r"entries\.\[r\]:587: value \*{8} ") as info:
        validate_entries({"[r]:587": value}, secret=True)
    assert "s3cret" not in info.value.msg


def test_bad_plain_value_is_shown():
    with pytest.raises(SmtpRelayError, match=r"entries\.root: value 'a\\nb'"):
        validate_entries({"root": "a\nb"})


@pytest.mark.parametrize("value", [True, None, ["x"], {"a": 1}])
def test_value_types(value):
    with pytest.raises(SmtpRelayError, match=r"entries\.k: the value must be a string or a number"):
        validate_entries({"k": value})


def test_keys_differing_in_case_are_refused():
    with pytest.raises(SmtpRelayError, match="differ only in case"):
        validate_entries({"Root": "a", "root": "b"})


def test_masked_view_marks_changes_without_values():
    before = render_map({"a": "1", "b": "2"})
    after = render_map({"a": "1", "b": "3", "c": "4"})
    assert masked_view(after, parse_map(before)) == f"a {MASK}\nb {MASK} (changed)\nc {MASK} (new)\n"
    assert masked_view(None) == ""


def test_is_stale(tmp_path):
    source = tmp_path / "m"
    source.write_text("a b\n")
    assert is_stale(str(source), "hash") is True
    assert is_stale(str(source), "texthash") is False
    (tmp_path / "m.db").write_text("")
    os.utime(source, (1000, 1000))
    os.utime(tmp_path / "m.db", (2000, 2000))
    assert is_stale(str(source), "hash") is False
    assert is_stale(str(source), "lmdb") is True
    os.utime(source, (3000, 3000))
    assert is_stale(str(source), "hash") is True


# -- ensure_map ----------------------------------------------------------------------------------------


def test_secret_map_built_0600_then_unchanged(runner, fake, config_dir):
    result = ensure_map(runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    path = config_dir / "sasl_passwd"
    assert result["changed"] is True
    assert result["path"] == str(path)
    assert result["map"] == f"hash:{path}"
    assert mode_of(path) == 0o600
    assert mode_of(str(path) + ".db") == 0o600
    assert read_index(str(path) + ".db")["entries"]["[relay.example.org]:587"] == "user:pa ss w0rd"
    assert listing(config_dir) == ["main.cf", "sasl_passwd", "sasl_passwd.db"]
    dumped = json.dumps(result)
    assert "pa ss w0rd" not in dumped and "0therSecret" not in dumped
    assert result["diff"]["after"] == f"[backup.example.org]:465 {MASK} (new)\n[relay.example.org]:587 {MASK} (new)\n"

    builds = len(fake.called("postmap"))
    again = ensure_map(runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    assert again["changed"] is False
    assert len(fake.called("postmap")) == builds


def test_postmap_builds_a_hidden_temporary_in_the_same_directory(runner, fake, config_dir):
    ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    (call,) = fake.called("postmap")
    assert call[1:3] == ["-c", str(config_dir)]
    map_type, built = call[3].split(":", 1)
    assert map_type == "hash"
    assert os.path.dirname(built) == str(config_dir)
    assert os.path.basename(built).startswith(".generic.")


def test_changed_value_rebuilds_and_marks_the_diff(runner, config_dir):
    ensure_map(runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    changed = {**SASL, "[relay.example.org]:587": "user:new"}
    result = ensure_map(runner, entries=changed, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    assert result["changed"] is True
    assert f"[relay.example.org]:587 {MASK} (changed)" in result["diff"]["after"]
    assert read_index(str(config_dir / "sasl_passwd.db"))["entries"]["[relay.example.org]:587"] == "user:new"


def test_deleted_or_stale_index_is_rebuilt(runner, fake, config_dir):
    ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    os.unlink(config_dir / "generic.db")
    result = ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    assert result["changed"] is True
    assert result["diff"]["after_header"].endswith("(index rebuilt)")
    assert (config_dir / "generic.db").exists()

    os.utime(config_dir / "generic.db", (1000, 1000))
    assert ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))["changed"] is True
    assert ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))["changed"] is False
    assert len(fake.called("postmap")) == 3


def test_check_mode_writes_nothing(runner, fake, config_dir):
    result = ensure_map(
        runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir), check_mode=True
    )
    assert result["changed"] is True
    assert listing(config_dir) == ["main.cf"]
    assert fake.called("postmap") == []


def test_default_type_comes_from_postconf(config_dir):
    fake = FakePostfix({**DEFAULTS, "default_database_type": "lmdb"})
    result = ensure_map(PostconfRunner(fake), entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    assert result["map"] == f"lmdb:{config_dir}/generic"
    assert listing(config_dir) == ["generic", "generic.lmdb", "main.cf"]
    assert ["postconf", "-c", str(config_dir), "default_database_type"] in fake.calls


def test_main_cf_setting_overrides_builtin_default(runner, config_dir):
    with open(config_dir / "main.cf", "a") as handle:
        handle.write("default_database_type = cdb\n")
    assert ensure_map(runner, entries={"a": "b"}, name="x", config_dir=str(config_dir))["map"].startswith("cdb:")
    assert (config_dir / "x.cdb").exists()


def test_texthash_needs_no_postmap_nor_main_cf(runner, fake, tmp_path):
    result = ensure_map(
        runner, entries={"root": "noreply@example.org"}, name="canon", map_type="texthash", config_dir=str(tmp_path)
    )
    assert result["changed"] is True
    assert result["map"] == f"texthash:{tmp_path}/canon"
    assert listing(tmp_path) == ["canon"]
    assert fake.calls == []
    assert result["diff"]["after"] == HEADER + "root noreply@example.org\n"


def test_indexed_map_without_main_cf_fails_cleanly(runner, tmp_path):
    with pytest.raises(SmtpRelayError, match=r"postmap needs .*main.cf, which does not exist"):
        ensure_map(runner, entries={"a": "b"}, name="generic", map_type="hash", config_dir=str(tmp_path))
    assert listing(tmp_path) == []


def test_failed_build_leaves_old_files_and_no_temporaries(runner, config_dir):
    ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    before = (config_dir / "generic").read_bytes(), (config_dir / "generic.db").read_bytes()
    broken = PostconfRunner(FakePostfix(postmap_fails=True))
    with pytest.raises(SmtpRelayError, match=r"postmap .* failed"):
        ensure_map(broken, entries={"a": "c"}, name="generic", config_dir=str(config_dir))
    assert ((config_dir / "generic").read_bytes(), (config_dir / "generic.db").read_bytes()) == before
    assert listing(config_dir) == ["generic", "generic.db", "main.cf"]


def test_existing_secret_file_with_loose_mode_is_fixed(runner, config_dir):
    ensure_map(runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    os.chmod(config_dir / "sasl_passwd.db", 0o644)
    result = ensure_map(runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    assert result["changed"] is True
    assert mode_of(config_dir / "sasl_passwd.db") == 0o600


def test_plain_map_keeps_its_mode(runner, config_dir):
    (config_dir / "generic").write_text("old value\n")
    os.chmod(config_dir / "generic", 0o640)
    ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    assert mode_of(config_dir / "generic") == 0o640
    assert mode_of(config_dir / "generic.db") == 0o640


def test_absent_removes_source_and_indexes(runner, config_dir):
    ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    (config_dir / "generic.lmdb").write_text("")
    check = ensure_map(runner, name="generic", state="absent", config_dir=str(config_dir), check_mode=True)
    assert check["changed"] is True
    assert listing(config_dir) == ["generic", "generic.db", "generic.lmdb", "main.cf"]
    assert ensure_map(runner, name="generic", state="absent", config_dir=str(config_dir))["changed"] is True
    assert listing(config_dir) == ["main.cf"]
    assert ensure_map(runner, name="generic", state="absent", config_dir=str(config_dir))["changed"] is False


@pytest.mark.parametrize(("name", "path"), [("../x", None), ("a b", None), (None, "relative/x"), (None, None)])
def test_bad_locations_are_refused(runner, config_dir, name, path):
    with pytest.raises(SmtpRelayError, match=r"(plain file name|must be absolute)"):
        ensure_map(runner, entries={"a": "b"}, name=name, path=path, config_dir=str(config_dir))


def test_path_outside_config_dir(runner, config_dir, tmp_path_factory):
    other = tmp_path_factory.mktemp("maps")
    result = ensure_map(runner, entries={"a": "b"}, path=str(other / "m"), config_dir=str(config_dir))
    assert result["path"] == str(other / "m")
    assert (other / "m.db").exists()


def test_check_mode_before_postfix_is_installed_predicts_the_table(uninstalled, tmp_path, fake):
    config_dir = tmp_path / "postfix"
    result = ensure_map(
        uninstalled, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir), check_mode=True
    )
    assert result["changed"] is True
    assert result["map"] == f"hash:{config_dir}/sasl_passwd"
    assert "pa ss w0rd" not in json.dumps(result)
    assert not config_dir.exists()
    assert fake.calls == []


def test_check_mode_before_postfix_is_installed_absent_table_is_no_change(uninstalled, tmp_path):
    result = ensure_map(
        uninstalled, name="sender_canonical", config_dir=str(tmp_path / "postfix"), state="absent", check_mode=True
    )
    assert result["changed"] is False


def test_plan_map_checks_everything_and_writes_nothing(runner, fake, config_dir):
    before = listing(config_dir)
    planned = plan_map(runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    assert planned.result["changed"] is True
    assert listing(config_dir) == before and fake.called("postmap") == []
    planned.write()
    assert listing(config_dir) == [*before, "sasl_passwd", "sasl_passwd.db"]
    assert plan_map(runner, entries=SASL, name="sasl_passwd", secret=True, config_dir=str(config_dir)).write is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "x", "config_dir": "{conf}/\x00"}, "config_dir contains a NUL character"),
        ({"name": "a" * 256}, "name has a name longer than 255 bytes"),
        ({"path": "{conf}/x\x00"}, "path contains a NUL character"),
        ({"path": "/" + "p/" * 2100}, "path is longer than 4095 bytes"),
        ({"name": 5}, "name 5 must be a plain file name"),
        ({"name": "missing/x"}, "name 'missing/x' must be a plain file name"),
        ({"name": "x", "config_dir": "{conf}/missing"}, "config_dir '{conf}/missing' is not a directory"),
        ({"path": "{conf}/missing/x"}, "path: the directory of {conf}/missing/x does not exist"),
        ({"name": "x", "state": "gone"}, "state 'gone' is not present or absent"),
        ({"path": "{conf}"}, "path: {conf} is a directory, not a file"),
    ],
)
def test_bad_locations_are_refused_naming_the_option(runner, config_dir, options, message):
    options = {k: v.replace("{conf}", str(config_dir)) if isinstance(v, str) else v for k, v in options.items()}
    with pytest.raises(SmtpRelayError) as info:
        ensure_map(runner, entries={"a": "b"}, **{"config_dir": str(config_dir), **options})
    assert info.value.msg.startswith(message.replace("{conf}", str(config_dir)))
    assert listing(config_dir) == ["main.cf"]


def test_where_names_the_table_in_every_message_about_its_options(runner, config_dir):
    with pytest.raises(SmtpRelayError, match=r"^maps\[2\]\.entries\.root: value"):
        plan_map(runner, entries={"root": " x"}, name="generic", config_dir=str(config_dir), where="maps[2].")
    with pytest.raises(SmtpRelayError, match=r"^maps\[2\]\.name '\.\.' must be"):
        plan_map(runner, entries={}, name="..", config_dir=str(config_dir), where="maps[2].")
