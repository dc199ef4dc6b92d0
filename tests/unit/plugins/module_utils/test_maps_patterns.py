# SPDX-License-Identifier: GPL-3.0-or-later
"""regexp/pcre tables (ordered, read by Postfix on a staged copy first), table types main.cf names (postconf -m),
and tables others may not read shown masked whatever ``secret`` says."""

from __future__ import annotations

import os

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.apply import apply_plan
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import HEADER, ensure_map, plan_map
from ansible_collections.smtp.relay.plugins.module_utils._postfix.pattern_tables import (
    PROBE,
    pattern_problem,
    validate_rules,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import MASK, apply
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.staging import table_types
from tests.unit.plugins.module_utils.postfix_fake import MAP_TYPES, FakePostfix

RULES = [
    {"pattern": "/^X-Internal-Host:/", "action": "IGNORE"},
    {"pattern": "/^Received: from (.*) by/i", "action": "REPLACE Received: from relay by"},
]


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "main.cf").write_text("relayhost = [relay.example.org]:587\n")
    return tmp_path


def listing(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- the shape of a pattern, checked before Postfix is asked ----------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["/^X-A:/", "/^X-A:/i", "/a b/imx", "!/^X-A:/", "/a/!/b/", r"/a\/b/", "%x%", "//", r"/^From: .*@example\.org$/"],
)
def test_patterns_postfix_can_read_pass(pattern):
    assert pattern_problem(pattern, "regexp") is None


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("^X-A:", "must start with a delimiter"),
        ("X-A IGNORE", "must start with a delimiter"),
        ("if /x/", "must start with a delimiter"),
        ("#x#", "must start with a delimiter"),
        (" /x/", "must start with a delimiter"),
        ("/^X-A:", "no closing delimiter '/'"),
        (r"/x\/", "no closing delimiter"),
        ("/x/q", "after the flags; valid flags: i, m, x"),
        ("/x/ IGNORE", "after the flags"),
        ("/x/\nIGNORE", "line break"),
        ("", "empty"),
        (None, "empty or not text"),
    ],
)
def test_patterns_postfix_cannot_read_are_refused(pattern, problem):
    assert problem in pattern_problem(pattern, "regexp")


def test_pcre_has_its_own_flags_and_no_second_pattern():
    assert pattern_problem("/x/sU", "pcre") is None
    assert "after the flags" in pattern_problem("/a/!/b/", "pcre")
    assert "valid flags" in pattern_problem("/x/s", "regexp")


def test_rules_keep_their_order_from_a_list_or_a_mapping():
    assert validate_rules(RULES, "regexp") == [(r["pattern"], r["action"]) for r in RULES]
    mapping = {"/b/": "IGNORE", "/a/": "WARN"}
    assert validate_rules(mapping, "regexp") == [("/b/", "IGNORE"), ("/a/", "WARN")]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([RULES[0], {"pattern": "/x/", "action": ""}], r"entries\[1\]: action of '/x/' is empty"),
        ([{"pattern": "/x/", "action": "IGNORE\n/y/ DISCARD"}], r"entries\[0\]: action .* line break"),
        ([{"pattern": "/x/", "action": " IGNORE"}], r"entries\[0\]: action .* white space"),
        ([RULES[0], {"pattern": "x", "action": "IGNORE"}], r"entries\[1\]: pattern of 'x' must start with a delim"),
        ([{"pattern": "/x/"}], r"entries\[0\] must be a mapping with exactly pattern and action"),
        ("/x/ IGNORE", r"entries of a regexp table must be a list of \{pattern, action\}"),
    ],
)
def test_bad_rules_are_refused_naming_the_entry(rules, message):
    with pytest.raises(SmtpRelayError, match=message):
        validate_rules(rules, "regexp")


# -- postfix_map: written in order, no index, Postfix reads a staged copy first -----------------------------


def test_regexp_table_is_written_in_order_after_postfix_read_it(runner, fake, config_dir):
    result = ensure_map(runner, entries=RULES, name="smtp_header_checks", map_type="regexp", config_dir=str(config_dir))
    path = config_dir / "smtp_header_checks"
    assert result["changed"] is True
    assert result["map"] == f"regexp:{path}"
    assert (
        path.read_text()
        == HEADER + "/^X-Internal-Host:/ IGNORE\n/^Received: from (.*) by/i REPLACE Received: from relay by\n"
    )
    assert listing(config_dir) == ["main.cf", "smtp_header_checks"], "no index for a regexp table"
    (query,) = fake.called("postmap")
    assert query[1] == "-c" and query[3:5] == ["-q", PROBE]
    staged = query[5].split(":", 1)[1]
    assert query[5].startswith("regexp:") and os.path.dirname(staged) == query[2] != str(config_dir)
    assert not os.path.exists(query[2]), "the staging copy is removed"

    again = ensure_map(runner, entries=RULES, name="smtp_header_checks", map_type="regexp", config_dir=str(config_dir))
    assert again["changed"] is False
    assert len(fake.called("postmap")) == 2, "Postfix reads an unchanged table again (its type may be missing)"
    with pytest.raises(SmtpRelayError, match=r"type pcre: Postfix cannot read the table \(install postfix-pcre\)"):
        ensure_map(runner, entries=RULES, name="smtp_header_checks", map_type="pcre", config_dir=str(config_dir))


def test_a_line_postfix_warns_about_is_refused_naming_the_entry_and_nothing_changes(runner, config_dir):
    ensure_map(runner, entries=RULES, name="checks", map_type="regexp", config_dir=str(config_dir))
    before = (config_dir / "checks").read_bytes()
    bad = [RULES[0], {"pattern": "/^X-Bad:[/", "action": "IGNORE"}]
    with pytest.raises(SmtpRelayError, match=r"entries\[1\]: Postfix refuses '/\^X-Bad:\[/': Invalid regular expr"):
        ensure_map(runner, entries=bad, name="checks", map_type="regexp", config_dir=str(config_dir))
    assert (config_dir / "checks").read_bytes() == before
    assert listing(config_dir) == ["checks", "main.cf"]


def test_check_mode_asks_postfix_too_and_writes_nothing(runner, fake, config_dir):
    bad = [{"pattern": "/(/", "action": "IGNORE"}]
    with pytest.raises(SmtpRelayError, match=r"entries\[0\]: Postfix refuses"):
        plan_map(runner, entries=bad, name="checks", map_type="regexp", config_dir=str(config_dir), check_mode=True)
    planned = plan_map(
        runner, entries=RULES, name="checks", map_type="regexp", config_dir=str(config_dir), check_mode=True
    )
    assert (planned.result["changed"], planned.write) == (True, None)
    assert listing(config_dir) == ["main.cf"]
    assert len(fake.called("postmap")) == 2


def test_pcre_without_its_package_is_refused_naming_the_package(runner, config_dir):
    with pytest.raises(SmtpRelayError, match=r"type pcre: Postfix cannot read the table \(install postfix-pcre\)"):
        ensure_map(runner, entries=RULES, name="checks", map_type="pcre", config_dir=str(config_dir))
    assert listing(config_dir) == ["main.cf"]


def test_a_regexp_table_needs_no_main_cf(runner, tmp_path):
    ensure_map(runner, entries=RULES, name="checks", map_type="regexp", config_dir=str(tmp_path))
    assert listing(tmp_path) == ["checks"]


def test_postfix_apply_writes_a_table_of_its_own_type_beside_the_hash_tables(config_dir):
    host = FakePostfix()
    maps = [
        {"name": "sender_canonical", "entries": {"root": "noreply@example.org"}},
        {"name": "smtp_header_checks", "entries": RULES, "type": "regexp"},
    ]
    main_cf = {"smtp_header_checks": f"regexp:{config_dir}/smtp_header_checks"}
    result = apply_plan(PostconfRunner(host), main_cf=main_cf, maps=maps, service=None, config_dir=str(config_dir))
    assert result["changed_parts"] == ["sender_canonical", "smtp_header_checks", "main.cf"]
    assert listing(config_dir) == ["main.cf", "sender_canonical", "sender_canonical.db", "smtp_header_checks"]


def test_postfix_apply_names_the_table_of_a_refused_entry_and_writes_nothing(config_dir):
    maps = [
        {"name": "sender_canonical", "entries": {"root": "noreply@example.org"}},
        {"name": "smtp_header_checks", "entries": [{"pattern": "/x[/", "action": "IGNORE"}], "type": "regexp"},
    ]
    with pytest.raises(SmtpRelayError, match=r"^maps\[1\]\.entries\[0\]: Postfix refuses '/x\[/'"):
        apply_plan(PostconfRunner(FakePostfix()), main_cf={}, maps=maps, service=None, config_dir=str(config_dir))
    assert listing(config_dir) == ["main.cf"]


# -- main.cf naming a table type this Postfix lacks (postconf -m) -------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "types"),
    [
        ("smtp_header_checks", "pcre:/etc/postfix/checks", ["pcre"]),
        ("smtp_sasl_password_maps", "hash:/etc/postfix/a, proxy:ldap:/etc/postfix/l.cf", ["hash", "proxy", "ldap"]),
        ("virtual_alias_maps", "inline:{ a=b, c=d } $other_maps", ["inline"]),
        ("alias_database", "hash:/etc/aliases", ["hash"]),
        ("local_transport", "error:local delivery is disabled", []),
        ("smtpd_relay_restrictions", "check_policy_service inet:127.0.0.1:10023", []),
        ("sender_canonical_maps", "", []),
    ],
)
def test_table_types_a_parameter_names(name, value, types):
    assert table_types(name, value) == types


def test_a_table_type_postfix_lacks_is_refused_naming_the_parameter_and_the_package(runner, config_dir):
    before = (config_dir / "main.cf").read_text()
    with pytest.raises(
        SmtpRelayError, match=r"settings\.smtp_header_checks: table type 'pcre' .* install postfix-pcre"
    ):
        apply_plan(runner, main_cf={"smtp_header_checks": "pcre:/x"}, service=None, config_dir=str(config_dir))
    with pytest.raises(
        SmtpRelayError, match=r"settings\.smtp_header_checks: table type 'pcre' .* install postfix-pcre"
    ):
        apply(runner, {"smtp_header_checks": "pcre:/etc/postfix/checks"}, config_dir=str(config_dir))
    with pytest.raises(SmtpRelayError, match=r"settings\.sender_canonical_maps: table type 'hsah' .* has: btree, cdb"):
        apply(runner, {"sender_canonical_maps": "hsah:/etc/postfix/c"}, config_dir=str(config_dir))
    assert (config_dir / "main.cf").read_text() == before


def test_table_types_are_asked_where_the_package_left_no_main_cf(tmp_path):
    host = FakePostfix(map_types=(*MAP_TYPES, "pcre"))
    result = apply_plan(
        PostconfRunner(host), main_cf={"smtp_header_checks": "pcre:/x"}, service=None, config_dir=str(tmp_path)
    )
    assert result["changed_parts"] == ["main.cf"]
    assert (tmp_path / "main.cf").read_text() == "smtp_header_checks = pcre:/x\n"


def test_a_table_type_postfix_has_passes_and_an_unchanged_parameter_costs_no_question(config_dir):
    fake = FakePostfix(map_types=(*MAP_TYPES, "pcre"))
    runner = PostconfRunner(fake)
    assert apply(runner, {"smtp_header_checks": "pcre:/etc/postfix/checks"}, config_dir=str(config_dir))["changed"]
    assert [c[:2] for c in fake.called("postconf")].count(["postconf", "-m"]) == 1
    fake.calls.clear()
    assert not apply(runner, {"smtp_header_checks": "pcre:/etc/postfix/checks"}, config_dir=str(config_dir))["changed"]
    assert [c[:2] for c in fake.called("postconf")].count(["postconf", "-m"]) == 0


# -- a table others may not read is shown masked, whatever secret says --------------------------------------


def test_removing_a_credentials_table_without_secret_shows_no_value(runner, config_dir):
    entries = {"[relay.example.org]:587": "user:pa55-w0rd"}
    ensure_map(runner, entries=entries, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    result = ensure_map(runner, name="sasl_passwd", state="absent", config_dir=str(config_dir))
    assert result["changed"] is True
    assert result["diff"]["before"] == f"[relay.example.org]:587 {MASK}\n"
    assert listing(config_dir) == ["main.cf"]


def test_rewriting_a_private_table_without_secret_shows_no_value(runner, config_dir):
    (config_dir / "generic").write_text("root old-secret-value\n")
    os.chmod(config_dir / "generic", 0o640)
    result = ensure_map(runner, entries={"root": "new-value"}, name="generic", config_dir=str(config_dir))
    assert "old-secret-value" not in str(result["diff"]) and "new-value" not in str(result["diff"])
    assert result["diff"]["after"] == f"root {MASK} (changed)\n"


def test_a_world_readable_table_is_shown_as_it_is(runner, config_dir):
    ensure_map(runner, entries={"root": "noreply@example.org"}, name="generic", config_dir=str(config_dir))
    os.chmod(config_dir / "generic", 0o644)
    result = ensure_map(runner, name="generic", state="absent", config_dir=str(config_dir))
    assert result["diff"]["before"] == HEADER + "root noreply@example.org\n"
