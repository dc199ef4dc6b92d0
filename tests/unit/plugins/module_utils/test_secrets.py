# SPDX-License-Identifier: GPL-3.0-or-later
"""Which raw argument values are secrets, and the module class that registers them before Ansible validates."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict, check_type_list
from ansible.module_utils.testing import patch_module_args

from ansible_collections.smtp.relay.plugins.module_utils._postfix.secrets import (
    entry_secrets,
    flagged,
    forms,
    hiding,
    setting_secrets,
    table_secrets,
)


def test_only_secret_named_parameters_count_in_any_shape():
    settings = {
        "relayhost": "[relay.example.org]:587",
        "relay_api_key": ["key-one", 12345, {"deep": "key-two"}, True, None],
        "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
        "my_token": " padded ",
    }
    assert setting_secrets(settings, check_type_dict) == {"key-one", "12345", "key-two", " padded ", "padded"}


def test_a_settings_string_counts_as_ansible_reads_it():
    assert setting_secrets("relay_api_key=key-one relayhost=x", check_type_dict) == {"key-one"}
    assert setting_secrets('{"my_secret": "s3"}', check_type_dict) == {"s3"}
    assert setting_secrets("not a mapping", check_type_dict) == set()
    assert setting_secrets(["relay_api_key"], check_type_dict) == set()


def test_forms_add_the_trimmed_and_the_escaped_value_and_skip_blanks():
    assert forms(["a\nb ", " ", ""]) == {"a\nb ", "a\nb", "a\\nb "}


def test_entries_of_any_shape_are_all_hidden():
    assert entry_secrets({"[r]:587": "u:pw", "[b]:465": 7}, check_type_dict) == {"u:pw", "7"}
    assert entry_secrets(["u:pw"], check_type_dict) == {"u:pw"}
    assert entry_secrets("k=u:pw", check_type_dict) == {"u:pw"}


def test_tables_as_ansible_turns_them_into_a_list_of_dicts():
    tables = [{"name": "sasl_passwd", "entries": {"k": "pw-1"}}, '{"name": "t", "entries": {"k": "pw-2"}}', "odd"]
    assert table_secrets(tables, check_type_dict, check_type_list) == {"pw-1", "pw-2", "odd"}
    assert table_secrets(None, check_type_dict, check_type_list) == set()
    assert table_secrets(5, check_type_dict, check_type_list) == {"5"}, "Ansible makes it ['5'], then refuses it"


FLAGS = [(None, False), (False, False), ("no", False), ("OFF", False), (0, False), (True, True), ("yes", True),
         (1, True), ("maybe", True)]  # fmt: skip


@pytest.mark.parametrize(("value", "expected"), FLAGS)
def test_a_secret_flag_counts_unless_plainly_false(value, expected):
    assert flagged(value) is expected


class Recorder:
    """Calls in AnsibleModule's order: no_log_values made, raw arguments loaded, then validation."""

    def __init__(self, params):
        self.no_log_values = set()
        self.raw = params
        self._load_params()
        self.seen_by_validation = set(self.no_log_values)

    def _load_params(self):
        self.params = dict(self.raw)


def test_hiding_registers_the_secrets_before_validation():
    module = hiding(Recorder, lambda raw: {raw["settings"]["my_secret"]})({"settings": {"my_secret": "s3"}})
    assert module.seen_by_validation == {"s3"}


def test_ansible_refusing_another_option_echoes_no_secret():
    module_class = hiding(AnsibleModule, lambda raw: setting_secrets(raw.get("settings"), check_type_dict))
    out = io.StringIO()
    args = {"settings": {"relay_api_key": "Sup3r-s3cret"}, "flag": "maybe"}
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        module_class(argument_spec={"settings": {"type": "dict"}, "flag": {"type": "bool"}})
    result = json.loads(out.getvalue())
    assert result["failed"] is True and "flag" in result["msg"]
    assert result["invocation"]["module_args"]["settings"] == {"relay_api_key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}
