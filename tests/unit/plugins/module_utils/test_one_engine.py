# SPDX-License-Identifier: GPL-3.0-or-later
"""One rule engine: the same cases through the role's plan, relay_check and postconf give the same rule ids."""

from __future__ import annotations

import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import apply
from ansible_collections.smtp.relay.plugins.module_utils._probe.relay_check import run

HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}
SASL = {"postfix_relay_username": "u", "postfix_relay_password": "p4ss"}
RULE_ID = re.compile(r"\(([a-z0-9_]+\.[a-z0-9_]+)\)")

# (role variables, postfix_main_cf, the rule ids every engine user must report)
CASES = [
    ({}, {"smtp_tls_wrappermode": "maybe"}, {"params.bad_boolean"}),
    ({}, {"smtp_tls_securty_level": "encrypt"}, {"params.mistyped"}),
    ({}, {"smtp_tls_enforce_peername": "yes"}, set()),  # obsolete: a warning, not a failure
    ({"postfix_relay_port": 465}, {"smtp_tls_wrappermode": "no"}, {"tls.wrappermode_required", "tls.mode_mismatch"}),
    ({"postfix_relay_port": 587}, {"smtp_tls_wrappermode": "yes"}, {"tls.wrappermode_unexpected", "tls.mode_mismatch"}),
    (SASL, {"smtp_tls_security_level": "none"}, {"sasl.without_encryption", "tls.mode_mismatch"}),
    ({}, {"smtp_tls_CAfile": None}, {"tls.verify_without_ca"}),
    (SASL, {"smtp_sasl_security_options": "noplaintext, bogus"}, {"sasl.security_options_invalid"}),
    ({"postfix_relay_port": 465}, {"smtp_tls_security_level": "may"}, {"tls.wrappermode_level"}),
]
PARAMETER_RULES = ("params.",)


def ids_from(message: str) -> set[str]:
    return set(RULE_ID.findall(message))


def through_the_plan(variables: dict, main_cf: dict) -> set[str]:
    spec = {"postfix_relay_host": "relay.example.org", **variables, "postfix_main_cf": main_cf}
    try:
        relay_settings(spec, host=HOST)
    except AnsibleFilterError as e:
        return ids_from(e.message)
    return set()


def through_relay_check(variables: dict, main_cf: dict) -> set[str]:
    planned = relay_settings({"postfix_relay_host": "relay.example.org", **variables}, host=HOST)
    settings = {**planned["main_cf"], **main_cf}
    result = run({"probe": False, "settings": settings, "sasl_keys": planned["sasl_keys"], "tls": planned["tls"]})
    return {c["id"] for c in result["checks"] if c["status"] == "fail"}


def through_postconf(main_cf: dict, runner, config_dir) -> set[str]:
    try:
        apply(runner, main_cf, config_dir=str(config_dir), check_mode=True)
    except SmtpRelayError as e:
        return set(e.details.get("rule_ids", []))
    return set()


@pytest.mark.parametrize(("variables", "main_cf", "expected"), CASES)
def test_the_plan_and_relay_check_agree(variables, main_cf, expected):
    assert through_the_plan(variables, main_cf) == expected
    assert through_relay_check(variables, main_cf) == expected


@pytest.mark.parametrize(("variables", "main_cf", "expected"), CASES)
def test_postconf_reports_the_same_parameter_rules(variables, main_cf, expected, runner, tmp_path):
    (tmp_path / "main.cf").write_text("")
    wanted = {i for i in expected if i.startswith(PARAMETER_RULES)}
    assert through_postconf(main_cf, runner, tmp_path) == wanted


def test_the_role_and_relay_check_translate_tls_modes_alike():
    for mode, port in (("starttls", 587), ("implicit", 465), ("none", 25)):
        planned = relay_settings(
            {
                "postfix_relay_host": "relay.example.org",
                "postfix_relay_port": port,
                "postfix_relay_tls": mode,
                "postfix_relay_ca_file": "/ca.pem",
            },
            host=HOST,
        )
        checked = run({"probe": False, "relayhost": planned["relayhost"], "tls": mode, "ca_file": "/ca.pem"}, None)
        assert checked["tls_mode"] == planned["tls"] == mode
        assert [c for c in checked["checks"] if c["status"] == "fail"] == []
