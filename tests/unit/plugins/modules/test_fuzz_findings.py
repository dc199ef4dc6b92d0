# SPDX-License-Identifier: GPL-3.0-or-later
"""Bugs the generated inputs of test_option_fuzz_postfix.py found in the modules, one input each, kept fixed.

Each test states the wanted behaviour; its docstring says what the module did before.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.smtp.relay.plugins.modules import postconf, postfix_apply, postfix_map, relay_check
from tests.unit.plugins.modules import fuzz_support as fz

SECRET = fz.SECRET_HEAD + "-pw-" + fz.SECRET_TAIL


@pytest.fixture(scope="module", autouse=True)
def remove_sandboxes(tmp_path_factory):
    fz.use_base(tmp_path_factory.getbasetemp())
    yield
    fz.remove_sandboxes()


@pytest.fixture
def host():
    """(sandbox root, configuration directory) of a configured fake host, and a run of a module on it."""
    with fz.sandbox() as box, fz.fake_host(box[0]):
        top, conf = box
        yield top, conf


def refused_naming(result: dict, *names: str) -> bool:
    return bool(result.get("failed")) and fz.names_an_option(result, names)


def test_postfix_apply_refusal_leaves_every_file_as_it_was(host):
    """Was: the tables and the mail name were written before main.cf was validated (_postfix/apply.py)."""
    top, conf = host
    before = fz.snapshot(top)
    args = {
        "main_cf": {"relayhost": "a\nb"},
        "maps": [{"name": "generic", "entries": {"@web1": "a@example.org"}}],
        "mailname_file": os.path.join(top, "mailname"),
        "mailname": "other.example",
        "config_dir": conf,
    }
    result = fz.run(postfix_apply.main, args, False)
    assert result["msg"].startswith("settings.relayhost:")
    assert fz.snapshot(top) == before


def test_postfix_apply_table_without_a_name_is_refused(host):
    """Was: KeyError in _postfix/apply.py (entry['name'])."""
    result = fz.run(
        postfix_apply.main, {"main_cf": {}, "maps": [{"entries": {"a": "b"}}], "config_dir": host[1]}, False
    )
    assert refused_naming(result, "maps", "name")


def test_postfix_apply_table_name_not_text_is_refused(host):
    """Was: TypeError in _postfix/maps.py resolve_path ('/' in 5)."""
    result = fz.run(
        postfix_apply.main, {"main_cf": {}, "maps": [{"name": 5, "entries": {}}], "config_dir": host[1]}, False
    )
    assert refused_naming(result, "maps", "name")


def test_postfix_apply_secret_entries_not_a_mapping_are_refused(host):
    """Was: AttributeError in modules/postfix_apply.py ((table.get('entries') or {}).values())."""
    args = {"main_cf": {}, "secret_maps": [{"name": "sasl_passwd", "entries": ["a"]}], "config_dir": host[1]}
    assert refused_naming(fz.run(postfix_apply.main, args, False), "secret_maps", "entries")


def test_postfix_apply_mailname_is_one_line(host):
    """Was: any mail name written as given, a newline or control character included."""
    top, conf = host
    args = {
        "main_cf": {},
        "mailname_file": os.path.join(top, "mailname"),
        "mailname": "a.example\nb",
        "config_dir": conf,
    }
    assert refused_naming(fz.run(postfix_apply.main, args, False), "mailname")


LONG = "a" * 300


@pytest.mark.parametrize(
    ("main", "args", "option"),
    [
        (postfix_map.main, {"name": "x", "entries": {}, "config_dir": "{conf}/\x00"}, "config_dir"),
        (postfix_map.main, {"name": LONG, "entries": {}, "config_dir": "{conf}"}, "name"),
        (postfix_map.main, {"path": "{conf}/x\x00", "entries": {}, "config_dir": "{conf}"}, "path"),
        (
            postfix_apply.main,
            {"main_cf": {}, "config_dir": "{conf}", "mailname_file": "{top}/" + LONG, "mailname": "a.example"},
            "mailname_file",
        ),
        (postfix_apply.main, {"main_cf": {}, "config_dir": "{conf}", "maps": [{"name": LONG, "entries": {}}]}, "name"),
    ],
    ids=["map-config_dir-nul", "map-name-long", "map-path-nul", "apply-mailname_file-long", "apply-table-name-long"],
)
def test_bad_path_is_refused_naming_the_option(host, main, args, option):
    """Was: ValueError/OSError from open() in _postfix/postconf.py read_text."""
    top, conf = host
    args = json.loads(json.dumps(args).replace("{conf}", conf).replace("{top}", top))
    assert refused_naming(fz.run(main, args, False), option)


def test_postfix_map_missing_directory_names_the_option(host):
    """Was: 'directory of PATH does not exist', naming neither config_dir nor path."""
    args = {"name": "x", "entries": {}, "config_dir": os.path.join(host[1], "missing")}
    assert refused_naming(fz.run(postfix_map.main, args, False), "config_dir")


@pytest.mark.parametrize("key", ["", " "])
def test_relay_check_blank_sasl_key_is_refused(host, key):
    """Was: the blank key became None in _probe/relay_check.py, then AttributeError in _rules.py (k.lower())."""
    args = {"probe": False, "settings": {"relayhost": "[a.example]:587"}, "sasl_keys": [key]}
    assert refused_naming(fz.run(relay_check.main, args, False), "sasl_keys")


@pytest.mark.parametrize(
    ("main", "args"),
    [
        (postconf.main, {"settings": {"relay_api_key": SECRET}, "allow_unknown": "maybe"}),
        (postfix_map.main, {"name": "sasl_passwd", "entries": {"k": SECRET}, "secret": True, "type": "bogus"}),
        (
            postfix_apply.main,
            {"main_cf": {}, "map_type": "bogus", "secret_maps": [{"name": "sasl_passwd", "entries": {"k": SECRET}}]},
        ),
    ],
    ids=["postconf", "postfix_map", "postfix_apply"],
)
def test_secret_hidden_when_the_argument_spec_refuses(host, main, args):
    """Was: the secret values were added to no_log_values after AnsibleModule() had refused the arguments."""
    result = fz.run(main, {**args, "config_dir": host[1]}, False)
    assert result["failed"] and SECRET not in json.dumps(result)


def test_postconf_hides_a_secret_given_as_a_list(host):
    """Was: masked as str(value), so a list's items were echoed."""
    args = {"settings": {"relay_api_key": [SECRET, "b"]}, "allow_unknown": True, "config_dir": host[1]}
    result = fz.run(postconf.main, args, False)
    assert not result.get("failed") and SECRET not in json.dumps(result)


def test_postfix_apply_hides_secret_named_main_cf_values(host):
    """Was: postfix_apply did not mask secret-named main_cf parameters as postconf does."""
    args = {"main_cf": {"relay_api_key": SECRET}, "packages": ["exim4"], "config_dir": host[1]}
    result = fz.run(postfix_apply.main, args, False)
    assert result["missing_packages"] == ["exim4"] and SECRET not in json.dumps(result)
