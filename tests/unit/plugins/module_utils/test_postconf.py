# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import (
    MASK,
    apply,
    check_parameters,
    normalize_settings,
    parameters,
    plan_changes,
    plan_main_cf,
    validate_staged,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import (
    PostconfRunner,
    ReadOnlyRunner,
    parse_postconf_output,
    postfix_present,
    postfix_version,
    read_effective,
    read_nondefault,
)
from tests.unit.plugins.module_utils.postfix_fake import DEFAULTS, FakePostfix

DEBIAN_MAIN_CF = """\
# See /usr/share/postfix/main.cf.dist for a commented, more complete version

smtpd_banner = $myhostname ESMTP $mail_name (Debian/GNU)
biff = no

# TLS parameters
smtpd_tls_cert_file=/etc/ssl/certs/ssl-cert-snakeoil.pem
smtpd_relay_restrictions = permit_mynetworks
    permit_sasl_authenticated
    defer_unauth_destination
myhostname = host.example.test
mydestination = $myhostname, localhost
relayhost =
inet_interfaces = all
"""


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "main.cf").write_text(DEBIAN_MAIN_CF)
    (tmp_path / "master.cf").write_text("smtp inet n - y - - smtpd\n")
    return tmp_path


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- reading -------------------------------------------------------------------------------------------


def test_parse_postconf_output_keeps_empty_values_and_spaces():
    text = "relayhost =\nmydestination = $myhostname, localhost\nsmtpd_banner = a = b\n"
    assert parse_postconf_output(text) == {
        "relayhost": "",
        "mydestination": "$myhostname, localhost",
        "smtpd_banner": "a = b",
    }


def test_read_nondefault_drops_config_directory_added_by_dash_c(runner, config_dir):
    values = read_nondefault(runner, str(config_dir))
    assert "config_directory" not in values
    assert values["smtpd_relay_restrictions"] == "permit_mynetworks permit_sasl_authenticated defer_unauth_destination"


def test_read_nondefault_without_main_cf_is_empty_and_runs_nothing(runner, fake, tmp_path):
    assert read_nondefault(runner, str(tmp_path)) == {}
    assert fake.calls == []


def test_read_effective_selected_names(runner, config_dir, fake):
    values = read_effective(runner, str(config_dir), ["inet_interfaces", "relayhost", "default_database_type"])
    assert values == {"inet_interfaces": "all", "relayhost": "", "default_database_type": "hash"}
    assert fake.calls[-1][1:] == ["-c", str(config_dir), "inet_interfaces", "relayhost", "default_database_type"]


def test_read_effective_without_main_cf_gives_the_defaults(runner, tmp_path):
    assert read_effective(runner, str(tmp_path), ["default_database_type", "nosuch"]) == {
        "default_database_type": "hash"
    }
    assert read_effective(runner, str(tmp_path))["mail_version"] == "3.7.11"


def test_postfix_version(runner):
    assert postfix_version(runner) == "3.7.11"


def test_failed_postconf_raises_with_its_message(runner, tmp_path):
    (tmp_path / "main.cf").write_text("this is not a parameter\n")
    with pytest.raises(SmtpRelayError, match="missing '=' after attribute name"):
        read_nondefault(runner, str(tmp_path))


def test_missing_binary_is_reported_by_name(tmp_path):
    runner = PostconfRunner(FakePostfix(), which=lambda name: None)
    with pytest.raises(SmtpRelayError, match="postconf not found on the host: install Postfix first"):
        postfix_version(runner)


# -- normalization and validation ---------------------------------------------------------------------


def test_values_are_normalized():
    assert normalize_settings(
        {"a": True, "b": False, "c": 10, "d": ["x", "y", 3], "e": None, "f": "  spaced  ", "g": []}
    ) == {"a": "yes", "b": "no", "c": "10", "d": "x, y, 3", "e": None, "f": "spaced", "g": ""}


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00b", "tab\there", ["ok", "bad\n"]])
def test_control_characters_are_refused(value):
    with pytest.raises(SmtpRelayError, match=r"settings\.relayhost: .*line break or control character"):
        normalize_settings({"relayhost": value})


def test_refused_secret_value_is_masked():
    with pytest.raises(SmtpRelayError) as info:
        normalize_settings({"smtp_api_password": "hunter2\n"})
    assert "hunter2" not in info.value.msg
    assert MASK in info.value.msg


@pytest.mark.parametrize("name", ["bad name", "a=b", "", "#x", "x$y"])
def test_bad_names_are_refused(name):
    with pytest.raises(SmtpRelayError, match="is not a Postfix parameter name"):
        normalize_settings({name: "x"})


@pytest.mark.parametrize("value", [{"a": 1}, 1.5, [["nested"]]])
def test_unsupported_value_types_are_refused(value):
    with pytest.raises(SmtpRelayError, match=r"settings\.relayhost"):
        normalize_settings({"relayhost": value})


@pytest.mark.parametrize("value", ["true", "1", "on", "False", "y"])
def test_booleans_other_than_yes_no_are_refused(value):
    with pytest.raises(SmtpRelayError, match=r"settings.smtp_tls_wrappermode: .*bad boolean.*params.bad_boolean"):
        check_parameters({"smtp_tls_wrappermode": value}, DEFAULTS)


def test_booleans_accept_yes_no_references_and_leave_other_parameters_alone():
    warnings = check_parameters(
        {"smtp_tls_wrappermode": "yes", "smtputf8_enable": "no", "smtp_sasl_auth_enable": "$x", "relayhost": "true"},
        DEFAULTS,
    )
    assert warnings == []


# -- planning ------------------------------------------------------------------------------------------


def test_plan_edits_in_place_appends_and_removes():
    text, changed, restart = plan_changes(
        DEBIAN_MAIN_CF,
        {
            "relayhost": "[relay.example.org]:587",
            "smtpd_relay_restrictions": None,
            "smtp_tls_security_level": "encrypt",
        },
    )
    lines = text.splitlines()
    assert lines[0].startswith("# See /usr/share")
    assert "relayhost = [relay.example.org]:587" in lines
    assert lines.index("relayhost = [relay.example.org]:587") < lines.index("inet_interfaces = all")
    assert lines[-1] == "smtp_tls_security_level = encrypt"
    assert "permit_sasl_authenticated" not in text
    assert "# TLS parameters" in text
    assert sorted(changed) == ["relayhost", "smtp_tls_security_level", "smtpd_relay_restrictions"]
    assert restart is False


def test_plan_without_change_returns_the_same_bytes():
    text, changed, restart = plan_changes(
        DEBIAN_MAIN_CF,
        {
            "biff": False,
            "smtpd_tls_cert_file": "/etc/ssl/certs/ssl-cert-snakeoil.pem",
            "smtpd_relay_restrictions": ["permit_mynetworks permit_sasl_authenticated defer_unauth_destination"],
            "nosuch": None,
        },
    )
    assert (text, changed, restart) == (DEBIAN_MAIN_CF, [], False)


def test_restart_needed_for_inet_interfaces():
    _text, changed, restart = plan_changes(DEBIAN_MAIN_CF, {"inet_interfaces": "loopback-only"})
    assert changed == ["inet_interfaces"]
    assert restart is True


def test_continuation_lines_across_comments_belong_to_the_parameter():
    current = "relayhost = a\n# note\n\n  b\nmyorigin = x\n"
    assert parameters(current) == {"relayhost": "a b", "myorigin": "x"}
    text, changed, _unused = plan_changes(current, {"relayhost": None})
    assert text == "myorigin = x\n"
    assert changed == ["relayhost"]


def test_duplicates_collapse_into_the_first_place():
    current = "relayhost = a\nmyorigin = x\nrelayhost = b\n"
    text, changed, _unused = plan_changes(current, {"relayhost": "b"})
    assert text == "relayhost = b\nmyorigin = x\n"
    assert changed == ["relayhost"]


def test_append_to_a_file_without_final_newline_and_to_an_empty_file():
    assert plan_changes("myorigin = x", {"relayhost": "r"})[0] == "myorigin = x\nrelayhost = r\n"
    assert plan_changes("", {"relayhost": "", "mydestination": None})[0] == "relayhost =\n"


def test_unparseable_lines_are_kept():
    text, _unused, _unused = plan_changes("garbage line\n  indented\nrelayhost = a\n", {"relayhost": "b"})
    assert text == "garbage line\n  indented\nrelayhost = b\n"


_names = st.sampled_from(["relayhost", "myorigin", "mydestination", "inet_interfaces", "smtp_tls_security_level"])
_values = st.one_of(st.none(), st.booleans(), st.integers(0, 99), st.text("abc[]:. $,", max_size=12))
_lines = st.lists(
    st.one_of(
        st.builds(lambda n, v: f"{n} = {v}\n", _names, st.text("abcd ", max_size=6)),
        st.sampled_from(["# comment\n", "\n", "  continued\n"]),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(lines=_lines, wanted=st.dictionaries(_names, _values, max_size=5))
def test_plan_reaches_the_wanted_values_and_is_idempotent(lines, wanted):
    current = "".join(lines)
    text, changed, _unused = plan_changes(current, wanted)
    result = parameters(text)
    for name, value in normalize_settings(wanted).items():
        if value is None:
            assert name not in result
        else:
            assert result[name] == value
    assert plan_changes(text, wanted) == (text, [], False)
    if not changed:
        assert text == current


# -- apply ---------------------------------------------------------------------------------------------

MANY = {
    "relayhost": "[relay.example.org]:587",
    "inet_interfaces": "loopback-only",
    "mydestination": "",
    "smtp_sasl_auth_enable": True,
    "smtp_sasl_security_options": ["noanonymous"],
    "smtpd_relay_restrictions": None,
}


def test_apply_sets_many_then_is_idempotent(runner, config_dir):
    main_cf = config_dir / "main.cf"
    os.chmod(main_cf, 0o640)
    result = apply(runner, MANY, config_dir=str(config_dir))
    assert result["changed"] is True
    assert result["restart_required"] is True
    assert result["changed_parameters"] == [
        "inet_interfaces",
        "mydestination",
        "relayhost",
        "smtp_sasl_auth_enable",
        "smtp_sasl_security_options",
        "smtpd_relay_restrictions",
    ]
    assert result["diff"]["before"] == DEBIAN_MAIN_CF
    assert result["diff"]["after"] == main_cf.read_text()
    assert "smtp_sasl_auth_enable = yes\n" in main_cf.read_text()
    assert stat.S_IMODE(main_cf.stat().st_mode) == 0o640
    assert sorted(p.name for p in config_dir.iterdir()) == ["main.cf", "master.cf"]

    again = apply(runner, MANY, config_dir=str(config_dir))
    assert again["changed"] is False
    assert again["restart_required"] is False
    assert again["diff"]["before"] == again["diff"]["after"]


def test_plan_validates_in_staging_and_writes_only_when_told(runner, config_dir, fake):
    before = digest(config_dir / "main.cf")
    planned = plan_main_cf(runner, MANY, config_dir=str(config_dir))
    assert ["-n", "-c"] in [c[1:3] for c in fake.called("postconf")], "the staged validation ran"
    assert digest(config_dir / "main.cf") == before
    planned.write()
    assert planned.result["diff"]["after"] == (config_dir / "main.cf").read_text()
    assert plan_main_cf(runner, MANY, config_dir=str(config_dir)).write is None


def test_check_mode_predicts_without_writing(runner, config_dir):
    before = digest(config_dir / "main.cf")
    result = apply(runner, MANY, config_dir=str(config_dir), check_mode=True)
    assert result["changed"] is True
    assert result["restart_required"] is True
    assert "relayhost = [relay.example.org]:587" in result["diff"]["after"]
    assert digest(config_dir / "main.cf") == before


def test_misspelt_name_is_refused_and_main_cf_untouched(runner, config_dir, fake):
    before = digest(config_dir / "main.cf")
    with pytest.raises(SmtpRelayError) as info:
        apply(runner, {"relayhst": "[relay.example.org]:587", "myorigin": "example.org"}, config_dir=str(config_dir))
    assert "relayhst is not a Postfix parameter; did you mean relayhost? (params.mistyped)" in info.value.msg
    assert info.value.details == {"rule_ids": ["params.mistyped"], "unknown_parameters": ["relayhst"]}
    assert digest(config_dir / "main.cf") == before
    assert not [c for c in fake.called("postconf") if "-n" in c], "refused by the rules, before any staging"


def test_allow_unknown_accepts_user_defined_names(runner, config_dir):
    result = apply(runner, {"my_rate": "5s"}, config_dir=str(config_dir), allow_unknown=True)
    assert result["changed"] is True
    assert "my_rate = 5s\n" in (config_dir / "main.cf").read_text()


def test_referenced_user_parameter_is_not_unknown(runner, config_dir):
    result = apply(runner, {"relay_target": "[r]:587", "relayhost": "$relay_target"}, config_dir=str(config_dir))
    assert result["changed"] is True


def test_preexisting_unused_parameter_is_only_a_warning(runner, config_dir):
    with open(config_dir / "main.cf", "a") as handle:
        handle.write("old_typo = 1\n")
    result = apply(runner, {"relayhost": "[r]:587"}, config_dir=str(config_dir))
    assert result["changed"] is True
    assert result["warnings"] == [f"{config_dir}/main.cf sets old_typo, which Postfix does not use"]


def test_syntax_error_fails_and_leaves_file(runner, config_dir):
    (config_dir / "main.cf").write_text("broken line\n")
    before = digest(config_dir / "main.cf")
    with pytest.raises(
        SmtpRelayError, match=r"postconf refused the new main.cf, .* left unchanged: .*missing '='"
    ) as info:
        apply(runner, {"relayhost": "[r]:587"}, config_dir=str(config_dir))
    assert "smtp-relay-postconf-" not in info.value.msg
    assert digest(config_dir / "main.cf") == before


def test_boolean_string_refused_before_staging(runner, config_dir, fake):
    with pytest.raises(SmtpRelayError, match=r"bad boolean configuration.*params\.bad_boolean"):
        apply(runner, {"smtp_tls_wrappermode": "true"}, config_dir=str(config_dir))
    assert not [c for c in fake.called("postconf") if "-n" in c]


def test_missing_main_cf_is_created_and_said_so(runner, tmp_path):
    result = apply(runner, {"relayhost": "[r]:587"}, config_dir=str(tmp_path))
    assert result["changed"] is True
    assert result["diff"]["before_header"].endswith("main.cf (absent: Postfix not configured yet)")
    assert (tmp_path / "main.cf").read_text() == "relayhost = [r]:587\n"
    assert stat.S_IMODE((tmp_path / "main.cf").stat().st_mode) == 0o644


def test_missing_config_dir_is_refused(runner, tmp_path):
    with pytest.raises(SmtpRelayError, match="is not a directory"):
        apply(runner, {"relayhost": "x"}, config_dir=str(tmp_path / "nope"))


def test_secret_named_values_never_appear(runner, config_dir):
    result = apply(runner, {"my_smtp_password": "s3cr3t-value"}, config_dir=str(config_dir), allow_unknown=True)
    assert "s3cr3t-value" not in json.dumps(result)
    assert f"my_smtp_password = {MASK}" in result["diff"]["after"]
    assert "s3cr3t-value" in (config_dir / "main.cf").read_text()


def test_password_map_references_stay_visible(runner, config_dir):
    result = apply(runner, {"smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd"}, config_dir=str(config_dir))
    assert "smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd" in result["diff"]["after"]


def test_check_mode_before_postfix_is_installed_predicts_a_new_main_cf(uninstalled, tmp_path, fake):
    config_dir = tmp_path / "postfix"  # the package has not even created the directory yet
    result = apply(uninstalled, {"relayhost": "[relay.example.org]:587"}, config_dir=str(config_dir), check_mode=True)
    assert result["changed"] is True
    assert "relayhost = [relay.example.org]:587" in result["diff"]["after"]
    assert "not installed" in result["warnings"][0]
    assert not config_dir.exists()
    assert fake.calls == []


def test_real_run_without_postfix_says_to_install_it(uninstalled, config_dir):
    with pytest.raises(SmtpRelayError, match="install Postfix first"):
        apply(uninstalled, {"relayhost": "[relay.example.org]:587"}, config_dir=str(config_dir))


# -- the codec: Postfix's own line grammar ---------------------------------------------------------------

# Python's str.splitlines splits at all of these; Postfix splits main.cf at "\n" only.
PYTHON_LINE_BREAKS = ["\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"]


@pytest.mark.parametrize("brk", PYTHON_LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in PYTHON_LINE_BREAKS])
def test_a_value_never_smuggles_a_parameter_line(runner, config_dir, brk):
    before = digest(config_dir / "main.cf")
    with pytest.raises(SmtpRelayError, match=r"settings\.smtpd_banner: .*line break"):
        apply(runner, {"smtpd_banner": f"hello{brk}relayhost = [evil.example]:25"}, config_dir=str(config_dir))
    assert digest(config_dir / "main.cf") == before


@pytest.mark.parametrize("name", ["relayhost\n", "relay host", "relayhost\u2028", "r\u00e9layhost", "", "=x"])
def test_names_postfix_would_read_differently_are_refused(name):
    with pytest.raises(SmtpRelayError, match="is not a Postfix parameter name"):
        normalize_settings({name: "x"})


@pytest.mark.parametrize("brk", PYTHON_LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in PYTHON_LINE_BREAKS])
def test_the_parser_splits_lines_where_postfix_does(brk):
    # A file someone else wrote: Postfix reads one parameter, so must we.
    text = f"smtpd_banner = hello{brk}relayhost = [evil.example]:25\nmyorigin = example.org\n"
    assert set(parameters(text)) == {"smtpd_banner", "myorigin"}
    new_text, changed, _restart = plan_changes(text, {"myorigin": "example.net"})
    assert changed == ["myorigin"]
    assert new_text.startswith(f"smtpd_banner = hello{brk}relayhost")


def test_non_utf8_bytes_survive_an_edit(runner, config_dir):
    path = config_dir / "main.cf"
    path.write_bytes(b"# caf\xe9 (Latin-1)\nsmtpd_banner = \xe9t\xe9\nmyorigin = example.org\n")
    result = apply(runner, {"myorigin": "example.net"}, config_dir=str(config_dir))
    assert result["changed"] is True
    assert path.read_bytes() == b"# caf\xe9 (Latin-1)\nsmtpd_banner = \xe9t\xe9\nmyorigin = example.net\n"
    json.dumps(result)  # the diff is returnable to Ansible
    assert "\ufffd" in result["diff"]["before"]


def test_a_directory_where_main_cf_should_be_is_a_clear_error(runner, tmp_path):
    (tmp_path / "main.cf").mkdir()
    with pytest.raises(SmtpRelayError, match="is a directory"):
        apply(runner, {"myorigin": "example.org"}, config_dir=str(tmp_path))


def test_a_read_only_runner_runs_each_command_once():
    calls = []

    def run_command(argv):
        calls.append(tuple(argv))
        return 0, f"out {len(calls)}\n", ""

    runner = ReadOnlyRunner(run_command)
    first = runner.run_unchecked("postconf", ["-n"])
    assert runner.run_unchecked("postconf", ["-n"]) == first
    assert runner.postconf(["-d", "-h", "mail_version"]) == ("out 2\n", "")
    assert runner.run_unchecked("postconf", ["-d", "-h", "mail_version"]) == (0, "out 2\n", "")
    assert calls == [("postconf", "-n"), ("postconf", "-d", "-h", "mail_version")]


def test_staging_holds_what_postconf_reads_beside_main_cf(tmp_path):
    """postconf knows plug-in map types from dynamicmaps.cf, and pauses about two seconds over a main.cf written
    within the last second or so (it lets it "cool down"): the staged copy is dated a minute back."""
    config = tmp_path / "etc"
    (config / "dynamicmaps.cf.d").mkdir(parents=True)
    (config / "dynamicmaps.cf.d" / "pcre").write_text("pcre postfix-pcre.so dict_pcre_open\n")
    (config / "dynamicmaps.cf").write_text("lmdb postfix-lmdb.so dict_lmdb_open\n")
    (config / "master.cf").write_text("smtp inet n - y - - smtpd\n")
    seen = {}

    def run_command(argv):
        staging = argv[argv.index("-c") + 1]
        seen.update({p.relative_to(staging).as_posix(): p.read_text() for p in Path(staging).rglob("*") if p.is_file()})
        seen["main.cf age"] = time.time() - os.stat(os.path.join(staging, "main.cf")).st_mtime
        return 0, "", ""

    warnings = validate_staged(
        PostconfRunner(run_command), str(config), "relayhost = x\n", introduced=["relayhost"],
        allow_unknown=False, mask=str,
    )  # fmt: skip
    assert warnings == []
    assert seen == {
        "main.cf": "relayhost = x\n",
        "master.cf": "smtp inet n - y - - smtpd\n",
        "dynamicmaps.cf": "lmdb postfix-lmdb.so dict_lmdb_open\n",
        "dynamicmaps.cf.d/pcre": "pcre postfix-pcre.so dict_pcre_open\n",
        "main.cf age": pytest.approx(60, abs=5),
    }


@pytest.mark.parametrize(
    ("found", "rc", "present"),
    [("/usr/sbin/postconf", 0, True), (None, 0, False), ("/usr/sbin/postconf", 1, False)],
)
def test_postfix_present_is_the_one_answer(found, rc, present):
    """postconf found and answering; a missing or broken one is 'not installed' (relay_info, relay_check agree)."""
    calls = []

    def run(argv):
        calls.append(argv)
        return rc, "3.7.11\n" if rc == 0 else "", "" if rc == 0 else "postconf: fatal: broken"

    assert postfix_present(PostconfRunner(run, which=lambda name: found)) is present
    assert len(calls) == (1 if found else 0)
