# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._rules import (
    Settings,
    permitted_mechanisms,
    relay_tokens,
    static_checks,
)

SASL = {
    "smtp_sasl_auth_enable": "yes",
    "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
    "smtp_sasl_security_options": "noanonymous",
    "smtp_sasl_tls_security_options": "noanonymous",
}
GOOD_587 = {
    "relayhost": "[smtp.example.org]:587",
    "smtp_tls_security_level": "secure",
    "smtp_tls_wrappermode": "no",
    "smtp_tls_CAfile": "/etc/ssl/certs/ca-certificates.crt",
    "smtp_tls_servername": "hostname",
    "compatibility_level": "3.6",
    "inet_interfaces": "loopback-only",
    "mydestination": "",
    "myorigin": "$myhostname",
    **SASL,
}


def results(settings, **context):
    return static_checks(settings, context)


def status(checks, check_id):
    found = [c["status"] for c in checks if c["id"] == check_id]
    assert found, f"{check_id} not in {[c['id'] for c in checks]}"
    return found[0] if len(found) == 1 else found


def test_a_good_role_configuration_has_no_failure_or_warning():
    checks = results(GOOD_587, sasl_keys=["[smtp.example.org]:587"], offered_mechanisms=["PLAIN", "LOGIN"],
                     sasl_plugins=["plain", "login"])  # fmt: skip
    assert [c for c in checks if c["status"] != "pass"] == []
    assert {"relayhost.syntax", "sasl.key_mismatch", "sasl.no_worthy_mechs", "tls.verify_without_ca"} <= {
        c["id"] for c in checks
    }


def test_empty_relayhost_fails():
    checks = results({})
    assert status(checks, "relayhost.missing") == "fail"


def test_relayhost_syntax_error_names_the_parameter():
    checks = results({"relayhost": "[smtp.example.org:587]"})
    bad = next(c for c in checks if c["id"] == "relayhost.syntax")
    assert bad["status"] == "fail"
    assert bad["parameter"] == "relayhost"
    assert "[smtp.example.org]:587" in bad["message"]


def test_unbracketed_host_warns_about_mx_lookup():
    checks = results({"relayhost": "smtp.example.org:587", "smtp_tls_security_level": "encrypt"})
    assert status(checks, "relayhost.mx_lookup") == "warn"


def test_port_465_needs_wrappermode():
    checks = results({"relayhost": "[smtp.example.org]:465", "smtp_tls_security_level": "encrypt"})
    assert status(checks, "tls.wrappermode_required") == "fail"
    ok = results({"relayhost": "[smtp.example.org]:465", "smtp_tls_security_level": "encrypt",
                  "smtp_tls_wrappermode": "yes"})  # fmt: skip
    assert status(ok, "tls.wrappermode_required") == "pass"
    assert status(ok, "tls.wrappermode_level") == "pass"


def test_symbolic_submissions_port_counts_as_465():
    checks = results({"relayhost": "[smtp.example.org]:submissions", "smtp_tls_security_level": "encrypt"})
    assert status(checks, "tls.wrappermode_required") == "fail"


def test_wrappermode_on_starttls_port_and_with_weak_level():
    checks = results({"relayhost": "[smtp.example.org]:587", "smtp_tls_wrappermode": "yes"})
    assert status(checks, "tls.wrappermode_unexpected") == "fail"
    assert status(checks, "tls.wrappermode_level") == "fail"


def test_port_forward_port_takes_the_mode_from_settings():
    checks = results({"relayhost": "[localhost]:30002", "smtp_tls_wrappermode": "yes",
                      "smtp_tls_security_level": "encrypt"})  # fmt: skip
    assert [c for c in checks if c["status"] == "fail"] == []


def test_asked_tls_mode_differs_from_settings():
    checks = results(GOOD_587, tls="implicit")
    assert status(checks, "tls.mode_mismatch") == "fail"
    assert "tls.mode_mismatch" not in {c["id"] for c in results(GOOD_587, tls="starttls")}


@pytest.mark.parametrize(("level", "expected"), [("none", "warn"), ("may", "warn")])
def test_weak_levels_warn(level, expected):
    checks = results({"relayhost": "[r.example.org]:587", "smtp_tls_security_level": level})
    assert status(checks, "tls.not_encrypted" if level == "none" else "tls.opportunistic") == expected


def test_default_level_follows_compatibility_level():
    assert Settings({}).tls_level() == "none"
    assert Settings({"compatibility_level": "3.11"}).tls_level() == "may"
    assert Settings({"smtp_use_tls": "yes"}).tls_level() == "may"
    assert Settings({"smtp_enforce_tls": "yes"}).tls_level() == "encrypt"


def test_unknown_level_fails():
    checks = results({"relayhost": "[r.example.org]:587", "smtp_tls_security_level": "mandatory"})
    assert status(checks, "tls.level_unknown") == "fail"


def test_verify_without_ca_fails_and_missing_ca_file_fails():
    settings = {"relayhost": "[r.example.org]:587", "smtp_tls_security_level": "verify"}
    assert status(results(settings), "tls.verify_without_ca") == "fail"
    settings["tls_append_default_CA"] = "yes"
    assert status(results(settings), "tls.verify_without_ca") == "pass"
    settings = {**GOOD_587}
    checks = results(settings, file_exists={"/etc/ssl/certs/ca-certificates.crt": False})
    assert status(checks, "tls.ca_missing") == "fail"


def test_sasl_over_clear_text_fails_and_over_may_warns():
    base = {"relayhost": "[r.example.org]:587", **SASL}
    assert status(results({**base, "smtp_tls_security_level": "none"}), "sasl.without_encryption") == "fail"
    assert status(results({**base, "smtp_tls_security_level": "may"}), "sasl.without_encryption") == "warn"
    assert status(results({**base, "smtp_tls_security_level": "encrypt"}), "sasl.without_encryption") == "pass"


def test_sasl_without_password_maps_fails():
    checks = results({**GOOD_587, "smtp_sasl_password_maps": ""})
    assert status(checks, "sasl.no_password_maps") == "fail"


def test_sasl_key_must_match_the_relayhost_exactly():
    mismatch = next(c for c in results(GOOD_587, sasl_keys=["smtp.example.org:587"]) if c["id"] == "sasl.key_mismatch")
    assert mismatch["status"] == "fail"
    assert "smtp.example.org:587" in mismatch["message"]
    assert "[smtp.example.org]:587" in mismatch["hint"]
    # postmap folds keys to lower case
    assert status(results(GOOD_587, sasl_keys=["[SMTP.example.org]:587"]), "sasl.key_mismatch") == "pass"
    assert "empty" in next(c for c in results(GOOD_587, sasl_keys=[]) if c["id"] == "sasl.key_mismatch")["message"]
    # keys unknown: the rule does not apply
    assert "sasl.key_mismatch" not in {c["id"] for c in results(GOOD_587)}


def test_keys_without_sasl_enabled_warn():
    settings = {**GOOD_587, "smtp_sasl_auth_enable": "no"}
    assert status(results(settings, sasl_keys=["[smtp.example.org]:587"]), "sasl.not_enabled") == "warn"


def test_no_worthy_mechs_with_postfix_default_options():
    settings = {k: v for k, v in GOOD_587.items() if not k.startswith("smtp_sasl_") or k in SASL}
    del settings["smtp_sasl_security_options"], settings["smtp_sasl_tls_security_options"]
    settings.update(smtp_sasl_auth_enable="yes", smtp_sasl_password_maps="hash:/etc/postfix/sasl_passwd")
    checks = results(settings, offered_mechanisms=["PLAIN", "LOGIN"], tls_active=True)
    worthy = next(c for c in checks if c["id"] == "sasl.no_worthy_mechs")
    assert worthy["status"] == "fail"
    assert worthy["parameter"] == "smtp_sasl_tls_security_options"
    assert "noanonymous" in worthy["hint"]
    # the same relay is fine once plaintext mechanisms are allowed over TLS
    checks = results({**settings, "smtp_sasl_tls_security_options": "noanonymous"}, offered_mechanisms=["PLAIN"])
    assert status(checks, "sasl.no_worthy_mechs") == "pass"


def test_tls_options_expand_the_plain_ones_by_default():
    s = Settings({"smtp_sasl_security_options": "noanonymous"})
    assert permitted_mechanisms(s, ["PLAIN", "LOGIN", "ANONYMOUS"], tls_active=True) == ["PLAIN", "LOGIN"]
    assert permitted_mechanisms(Settings({}), ["CRAM-MD5", "PLAIN"], tls_active=False) == ["CRAM-MD5"]
    assert permitted_mechanisms(Settings({"smtp_sasl_security_options": "nodictionary"}), ["CRAM-MD5"], False) == []
    assert permitted_mechanisms(Settings({"smtp_sasl_mechanism_filter": "login", "smtp_sasl_security_options": ""}),
                                ["PLAIN", "LOGIN"], True) == ["LOGIN"]  # fmt: skip


def test_missing_sasl_plugin_fails_when_the_relay_needs_it():
    checks = results(GOOD_587, offered_mechanisms=["PLAIN", "LOGIN"], sasl_plugins=["crammd5"])
    plugin = next(c for c in checks if c["id"] == "sasl.plugins_missing")
    assert plugin["status"] == "fail"
    assert "libsasl2-modules" in plugin["hint"]
    assert status(results(GOOD_587, sasl_plugins=[]), "sasl.plugins_missing") == "warn"
    assert "sasl.plugins_missing" not in {c["id"] for c in results(GOOD_587)}


def test_invalid_sasl_option_fails():
    checks = results({**GOOD_587, "smtp_sasl_security_options": "noanonymous, noplain"})
    assert status(checks, "sasl.security_options_invalid") == "fail"


def test_mistyped_obsolete_and_bad_boolean_parameters():
    checks = results({**GOOD_587, "relayhst": "[x]:587", "smtp_use_tls": "true", "smtp_tls_wrapermode": "yes"})
    mistyped = {c["parameter"]: c for c in checks if c["id"] == "params.mistyped"}
    assert set(mistyped) == {"relayhst", "smtp_tls_wrapermode"}
    assert "relayhost" in mistyped["relayhst"]["message"]
    assert status(checks, "params.obsolete") == "warn"
    assert [c["parameter"] for c in checks if c["id"] == "params.bad_boolean"] == ["smtp_use_tls"]


def test_other_services_parameters_are_not_typos():
    checks = results({**GOOD_587, "smtpd_tls_CAfile": "/x", "smtpd_sasl_auth_enable": "no"})
    assert not [c for c in checks if c["id"].startswith("params.")]


@pytest.mark.parametrize("value", ["yes", "no", "YES", "$other_flag"])
def test_booleans_postfix_accepts(value):
    checks = results({**GOOD_587, "biff": value})
    assert "params.bad_boolean" not in {c["id"] for c in checks}
    if "$" not in value:
        assert status(results({**GOOD_587, "biff": value + "x"}), "params.bad_boolean") == "fail"


def test_known_parameters_from_postconf_flag_unknown_names_and_booleans():
    checks = results({**GOOD_587, "my_custom_thing": "1", "new_flag": "true"},
                     known_parameters=[*GOOD_587, "new_flag"], boolean_parameters=["new_flag"])  # fmt: skip
    assert status(checks, "params.unknown") == "warn"
    assert [c["parameter"] for c in checks if c["id"] == "params.bad_boolean"] == ["new_flag"]


def test_only_configured_names_are_judged_when_settings_hold_defaults():
    settings = {**GOOD_587, "smtp_use_tls": "no"}
    checks = results(settings, configured=["relayhost"])
    assert "params.obsolete" not in {c["id"] for c in checks}


def test_none_means_default():
    checks = results({**GOOD_587, "smtp_tls_wrappermode": None})
    assert "tls.wrappermode_unexpected" not in {c["id"] for c in checks}
    assert Settings({"smtp_tls_wrappermode": None}).flag("smtp_tls_wrappermode") is False


def test_relay_tokens_keep_the_written_form():
    assert relay_tokens("[a.example]:submission, b.example:25") == ["[a.example]:submission", "b.example:25"]


def test_every_check_has_the_common_shape():
    for c in results({**GOOD_587, "relayhst": "x"}, sasl_keys=["x"], offered_mechanisms=["PLAIN"]):
        assert set(c) >= {"id", "status", "stage", "message", "hint"}
        assert c["stage"] == "static"
