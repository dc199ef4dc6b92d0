# SPDX-License-Identifier: GPL-3.0-or-later
"""The role's one plan, through the filter the role calls: Ansible's coercion, then the plan and its rules."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings, role_spec

CA = "/etc/ssl/certs/ca-certificates.crt"
HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": CA, "packages": ["postfix"]}
PASSWORD = "s3cret-Pa55"


def plan(host=None, **variables):
    return relay_settings({"postfix_relay_host": "relay.example.org", **variables}, host=host or HOST)


def refused(host=None, **variables) -> str:
    with pytest.raises(AnsibleFilterError) as info:
        plan(host, **variables)
    return info.value.message


def test_campus_relay_null_client():
    got = plan(
        postfix_relay_port=587,
        postfix_sender_address="noreply@dept.example.org",
        postfix_allowed_sender_domains=["dept.example.org"],
    )
    cf = got["main_cf"]
    assert cf["relayhost"] == "[relay.example.org]:587"
    assert cf["inet_interfaces"] == "loopback-only"
    assert cf["mydestination"] == ""
    assert cf["myhostname"] == cf["myorigin"] == "web1.example.org"
    assert cf["smtp_tls_security_level"] == "secure"
    assert cf["smtp_tls_wrappermode"] == "no"
    assert cf["smtp_tls_CAfile"] == CA
    assert cf["smtp_sasl_auth_enable"] == "no"
    assert cf["smtp_sasl_password_maps"] is None, "no credentials: the map reference is removed"
    assert cf["sender_canonical_maps"] == "hash:/etc/postfix/sender_canonical"
    assert set(got["sender_canonical"]) == {"@web1.example.org", "@web1", "@localhost", "@localhost.localdomain"}
    assert got["sasl_keys"] == []
    assert got["packages"] == ["postfix"]


def test_implicit_tls_on_a_forwarded_port_with_sasl():
    got = plan(
        postfix_relay_port=30002,
        postfix_relay_tls="implicit",
        postfix_relay_username="user",
        postfix_relay_password=PASSWORD,
    )
    cf = got["main_cf"]
    assert cf["smtp_tls_wrappermode"] == "yes"
    assert cf["smtp_sasl_auth_enable"] == "yes"
    assert cf["smtp_sasl_password_maps"] == "hash:/etc/postfix/sasl_passwd"
    assert cf["smtp_sasl_security_options"] == "noplaintext, noanonymous"
    assert cf["smtp_sasl_tls_security_options"] == "noanonymous"
    assert got["sasl_keys"] == [got["relayhost"]] == ["[relay.example.org]:30002"]
    assert PASSWORD not in repr(got)


def test_satellite_keeps_local_aliases():
    cf = plan(postfix_mode="satellite")["main_cf"]
    assert cf["alias_maps"] == "hash:/etc/aliases"
    assert cf["mydestination"].startswith("$myhostname")
    assert cf["local_transport"] is None


@pytest.mark.parametrize(
    ("provider", "extra", "relayhost"),
    [
        ("ses", {"postfix_relay_ses_region": "eu-west-1"}, "[email-smtp.eu-west-1.amazonaws.com]:587"),
        ("sendgrid", {}, "[smtp.sendgrid.net]:587"),
        ("mailgun", {"postfix_relay_mailgun_region": "eu"}, "[smtp.eu.mailgun.org]:587"),
        ("office365", {}, "[smtp.office365.com]:587"),
        ("gmail", {}, "[smtp.gmail.com]:587"),
    ],
)
def test_provider_presets(provider, extra, relayhost):
    variables = {"postfix_relay_provider": provider, "postfix_relay_password": PASSWORD, **extra}
    if provider != "sendgrid":
        variables["postfix_relay_username"] = "user"
    got = relay_settings(variables, host=HOST)
    assert got["relayhost"] == relayhost
    assert got["username"] == ("apikey" if provider == "sendgrid" else "user")


def test_google_relay_needs_no_credentials():
    got = relay_settings({"postfix_relay_provider": "google_relay"}, host=HOST)
    assert got["relayhost"] == "[smtp-relay.gmail.com]:587"
    assert got["username"] == ""


def test_explicit_variables_override_the_preset():
    got = relay_settings(
        {"postfix_relay_provider": "sendgrid", "postfix_relay_port": 2525, "postfix_relay_password": PASSWORD},
        host=HOST,
    )
    assert got["relayhost"] == "[smtp.sendgrid.net]:2525"


# Values from INI inventories and -e are strings: they mean what Ansible's boolean() says.
@pytest.mark.parametrize(("text", "meant"), [("false", False), ("no", False), ("0", False), ("off", False),
                                             ("true", True), ("yes", True), ("1", True), ("on", True)])  # fmt: skip
def test_string_booleans_mean_what_they_say(text, meant):
    assert plan(postfix_relay_mx_lookup=text)["relayhost"] == (
        "relay.example.org:587" if meant else "[relay.example.org]:587"
    )
    level = plan(postfix_relay_tls_verify=text)["main_cf"]["smtp_tls_security_level"]
    assert level == ("secure" if meant else "encrypt")
    level = plan(postfix_relay_tls_opportunistic=text)["main_cf"]["smtp_tls_security_level"]
    assert level == ("may" if meant else "secure")
    backups = plan(postfix_relay_backup_hosts=[{"host": "b.example.org", "mx_lookup": text}])["relayhost"]
    assert backups.endswith("b.example.org:587" if meant else "[b.example.org]:587")
    plaintext = {"postfix_relay_tls": "none", "postfix_relay_port": "25", "postfix_relay_username": "u"}
    if meant:
        got = plan(postfix_relay_allow_plaintext_auth=text, postfix_relay_password=PASSWORD, **plaintext)
        assert got["main_cf"]["smtp_sasl_security_options"] == "noanonymous"
    else:
        message = refused(postfix_relay_allow_plaintext_auth=text, postfix_relay_password=PASSWORD, **plaintext)
        assert message.startswith("postfix_relay_tls:")
        assert "sasl.without_encryption" in message
    if meant:
        assert refused(postfix_relay_auth_required=text).startswith("postfix_relay_username:")
    else:
        assert plan(postfix_relay_auth_required=text)["username"] == ""


def test_every_boolean_of_the_spec_is_read_through_the_coercion():
    booleans = {name for name, option in role_spec().items() if option.get("type") == "bool"}
    assert booleans == {
        "postfix_relay_mx_lookup",
        "postfix_relay_tls_verify",
        "postfix_relay_allow_plaintext_auth",
        "postfix_relay_auth_required",
        "postfix_no_log",
        "postfix_relay_tls_opportunistic",
    }, "a new boolean needs a case in test_string_booleans_mean_what_they_say"


def test_strings_become_integers():
    assert plan(postfix_relay_port="2587")["relayhost"] == "[relay.example.org]:2587"
    assert plan(postfix_relay_concurrency="3")["main_cf"]["smtp_destination_concurrency_limit"] == "3"


def test_plaintext_auth_works_when_explicitly_allowed():
    got = plan(
        postfix_relay_tls="none",
        postfix_relay_port=25,
        postfix_relay_username="u",
        postfix_relay_password=PASSWORD,
        postfix_relay_allow_plaintext_auth=True,
    )
    assert got["main_cf"]["smtp_tls_security_level"] == "none"
    assert got["allow_plaintext_auth"] is True


def test_backup_relays_each_get_a_sasl_key():
    got = plan(
        postfix_relay_port=2587,
        postfix_relay_username="u",
        postfix_relay_password=PASSWORD,
        postfix_relay_backup_hosts=[{"host": "backup.example.org"}, {"host": "192.0.2.7", "port": "2525"}],
        postfix_relay_tls="starttls",
    )
    assert got["relayhost"] == "[relay.example.org]:2587, [backup.example.org]:2587, [192.0.2.7]:2525"
    assert got["sasl_keys"] == ["[relay.example.org]:2587", "[backup.example.org]:2587", "[192.0.2.7]:2525"]


def test_short_host_name_gets_the_name_postfix_would_use():
    got = plan(host={**HOST, "fqdn": "vm", "hostname": "vm"}, postfix_sender_address="noreply@example.org")
    assert got["myhostname"] == got["main_cf"]["myhostname"] == "vm.localdomain"
    assert got["sender_canonical"]["@vm.localdomain"] == "noreply@example.org"
    assert got["sender_canonical"]["@vm"] == "noreply@example.org"


def test_myorigin_is_rewritten_too():
    got = plan(postfix_myorigin="example.org", postfix_sender_address="noreply@example.org")
    assert got["main_cf"]["myorigin"] == "example.org"
    assert "@example.org" in got["sender_canonical"]


def test_postfix_main_cf_is_part_of_the_plan():
    got = plan(postfix_main_cf={"smtp_tls_security_level": "verify", "message_size_limit": 1024, "biff": False})
    cf = got["main_cf"]
    assert (cf["smtp_tls_security_level"], cf["message_size_limit"], cf["biff"]) == ("verify", "1024", "no")
    assert got["tls_level"] == "verify"
    assert plan(postfix_main_cf={"smtp_tls_loglevel": None})["main_cf"]["smtp_tls_loglevel"] is None


@pytest.mark.parametrize(
    ("variables", "rule"),
    [
        ({"postfix_relay_port": 465, "postfix_main_cf": {"smtp_tls_wrappermode": "no"}}, "tls.wrappermode_required"),
        (
            {
                "postfix_relay_username": "u",
                "postfix_relay_password": PASSWORD,
                "postfix_main_cf": {"smtp_tls_security_level": "none"},
            },
            "sasl.without_encryption",
        ),
        ({"postfix_main_cf": {"smtp_tls_wrappermode": "maybe"}}, "params.bad_boolean"),
        ({"postfix_main_cf": {"smtp_tls_securty_level": "encrypt"}}, "params.mistyped"),
    ],
)
def test_postfix_main_cf_conflicts_are_refused_naming_it(variables, rule):
    message = refused(**variables)
    assert message.startswith("postfix_main_cf"), message
    assert rule in message


@pytest.mark.parametrize("name", ["relayhost", "myhostname", "smtp_sasl_password_maps", "sender_canonical_maps"])
def test_postfix_main_cf_may_not_set_what_a_variable_sets(name):
    assert refused(postfix_main_cf={name: "x"}).startswith(f"postfix_main_cf.{name}:")


LINE_BREAKS = ["\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x7f"]


@pytest.mark.parametrize("brk", LINE_BREAKS, ids=[f"U+{ord(c):04X}" for c in LINE_BREAKS])
@pytest.mark.parametrize(
    ("variable", "make"),
    [
        ("postfix_relay_host", lambda b: {"postfix_relay_host": f"relay.example.org{b}relayhost = [evil]"}),
        ("postfix_myorigin", lambda b: {"postfix_myorigin": f"example.org{b}relayhost = [evil.example]:25"}),
        ("postfix_myhostname", lambda b: {"postfix_myhostname": f"a.example.org{b}x = y"}),
        ("postfix_relay_ca_file", lambda b: {"postfix_relay_ca_file": f"/etc/ca.pem{b}relayhost = [evil]"}),
        ("postfix_rate_delay", lambda b: {"postfix_rate_delay": f"1s{b}relayhost = [evil]"}),
        ("postfix_sender_canonical", lambda b: {"postfix_sender_canonical": {"@web1": f"a@example.org{b}b"}}),
        ("postfix_main_cf", lambda b: {"postfix_main_cf": {"smtpd_banner": f"hi{b}relayhost = [evil.example]:25"}}),
        ("postfix_main_cf", lambda b: {"postfix_main_cf": {f"smtpd_banner{b}": "x"}}),
        ("postfix_relay_username", lambda b: {"postfix_relay_username": f"u{b}x", "postfix_relay_password": "p"}),
    ],
)
def test_line_breaks_never_reach_a_postfix_file(brk, variable, make):
    message = refused(**make(brk))
    assert message.startswith(variable), message


@pytest.mark.parametrize("brk", ["\n", "\u2028", "\x85"])
def test_a_secret_with_a_line_break_is_refused_without_showing_it(brk):
    secret = f"first-half{brk}second-half"
    message = refused(postfix_relay_username="u", postfix_relay_password=secret)
    assert message.startswith("postfix_relay_password:")
    assert "first-half" not in message
    assert "second-half" not in message


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"postfix_relay_port": 465, "postfix_relay_tls": "starttls"}, "postfix_relay_tls"),
        ({"postfix_relay_port": 587, "postfix_relay_tls": "implicit"}, "postfix_relay_tls"),
        ({"postfix_relay_port": 30002}, "postfix_relay_tls"),
        ({"postfix_relay_port": 0}, "postfix_relay_port"),
        ({"postfix_relay_port": 70000}, "postfix_relay_port"),
        ({"postfix_relay_port": "five"}, "postfix_relay_port"),
        ({"postfix_relay_tls": "bogus"}, "postfix_relay_tls"),
        ({"postfix_relay_host": "[relay.example.org:587]"}, "postfix_relay_host"),
        ({"postfix_relay_provider": "postmark"}, "postfix_relay_provider"),
        (
            {"postfix_relay_tls": "none", "postfix_relay_username": "u", "postfix_relay_password": PASSWORD},
            "postfix_relay_tls",
        ),
        ({"postfix_relay_username": "u"}, "postfix_relay_password"),
        ({"postfix_relay_password": PASSWORD}, "postfix_relay_username"),
        (
            {"postfix_sender_address": "a@other.org", "postfix_allowed_sender_domains": ["dept.example.org"]},
            "postfix_sender_address",
        ),
        ({"postfix_relay_provider": "ses"}, "postfix_relay_ses_region"),
        ({"postfix_relay_provider": "ses", "postfix_relay_ses_region": "mars-1"}, "postfix_relay_ses_region"),
        ({"postfix_mode": "open_relay"}, "postfix_mode"),
        ({"postfix_sender_address": "not-an-address"}, "postfix_sender_address"),
        ({"postfix_rate_delay": "1 s"}, "postfix_rate_delay"),
        ({"postfix_rate_delay": "fast"}, "postfix_rate_delay"),
        ({"postfix_relay_concurrency": 0}, "postfix_relay_concurrency"),
        ({"postfix_sender_canonical": {"root user": "a@example.org"}}, "postfix_sender_canonical"),
        ({"postfix_sender_canonical": {"root": "a b@example.org"}}, "postfix_sender_canonical"),
        ({"postfix_myhostname": "vm"}, "postfix_myhostname"),
        ({"postfix_relay_backup_hosts": [{"host": "[b.example.org]"}]}, "postfix_relay_backup_hosts"),
        ({"postfix_relay_backup_hosts": [{"port": 25}]}, "postfix_relay_backup_hosts"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(variables, variable):
    message = refused(**variables)
    assert message.startswith(variable), message
    assert PASSWORD not in message


@pytest.mark.parametrize(
    ("variables", "start"),
    [
        # Ansible's own validation says "argument 'postfix_relay_port' is of type...", "missing required arguments:
        # host found in postfix_relay_backup_hosts": the planner names what it is about first, to the element.
        ({"postfix_relay_port": "five"}, "postfix_relay_port: 'five' is not a whole number"),
        ({"postfix_relay_mx_lookup": "maybe"}, "postfix_relay_mx_lookup: 'maybe' is not a boolean"),
        ({"postfix_mode": "open_relay"}, "postfix_mode: 'open_relay' is not one of: null_client, satellite"),
        ({"postfix_main_cf": "x"}, "postfix_main_cf: 'x' is not a dict"),
        ({"postfix_relay_backup_hosts": [{"port": 25}]}, "postfix_relay_backup_hosts[0].host: required"),
        ({"postfix_relay_backup_hosts": [{"host": "b.example.org"}, 5]}, "postfix_relay_backup_hosts[1]: 5 is not"),
        (
            {"postfix_relay_backup_hosts": [{"host": "b.example.org", "port": "x"}]},
            "postfix_relay_backup_hosts[0].port: 'x' is not a whole number",
        ),
        (
            {"postfix_relay_backup_hosts": [{"host": "b.example.org", "weight": 1}]},
            "postfix_relay_backup_hosts[0].weight",
        ),
        # check_type_int lets OverflowError out for infinity; more than 4300 digits make int() and repr() raise.
        ({"postfix_relay_port": "inf"}, "postfix_relay_port: 'inf' is not a whole number"),
        ({"postfix_relay_port": float("-inf")}, "postfix_relay_port: -inf is not a whole number"),
        ({"postfix_relay_port": "1" * 5000}, "postfix_relay_port: "),
        ({"postfix_relay_concurrency": "1" * 5000}, "postfix_relay_concurrency: <a number of"),
        (
            {"postfix_relay_backup_hosts": [{"host": "b.example.org", "port": float("inf")}]},
            "postfix_relay_backup_hosts[0].port: inf",
        ),
    ],
)
def test_refusals_start_with_what_they_are_about(variables, start):
    message = refused(**variables)
    assert message.startswith(start) and len(message) < 500, message


def test_two_bad_variables_are_both_named():
    message = refused(postfix_relay_port="five", postfix_mode="open_relay")
    assert message.startswith("postfix_relay_port: ") and "; postfix_mode: " in message, message


@pytest.mark.parametrize("fact", ["ca_bundle", "config_dir", "map_type"])
@pytest.mark.parametrize("value", ["/etc/x\nrelayhost = [evil.example]", "/etc/\x1b.crt", "a\u2028b", ["/etc/x"]])
def test_host_facts_that_main_cf_holds_are_one_line_of_text(fact, value):
    message = refused(host={**HOST, fact: value})
    assert message.startswith(f"host fact {fact}: ") and "per-platform vars" in message, message


@pytest.mark.parametrize("secret", [f"{PASSWORD}\udcff", f" {PASSWORD}"])
def test_a_secret_of_the_wrong_shape_is_refused_without_showing_it(secret):
    message = refused(postfix_relay_username="u", postfix_relay_password=secret)
    assert message.startswith("postfix_relay_password: the value (hidden)") and PASSWORD not in message


def test_wildcard_allows_subdomains_only_when_asked():
    ok = plan(postfix_sender_address="a@mail.example.org", postfix_allowed_sender_domains=["*.example.org"])
    assert ok["sender_domains"] == ["mail.example.org"]
    assert "outside postfix_allowed_sender_domains" in refused(
        postfix_sender_address="a@mail.example.org", postfix_allowed_sender_domains=["example.org"]
    )


# -- operator features: where local mail goes, how long mail waits, credentials that must be there -------------


def test_local_mail_goes_to_the_operations_address_at_the_hosts_own_names_only():
    got = plan(postfix_local_mail_to="ops@example.org")
    cf = got["main_cf"]
    assert cf["virtual_alias_maps"] == "hash:/etc/postfix/local_recipients"
    assert got["maps"]["local_recipients"]["path"] == "/etc/postfix/local_recipients"
    assert got["local_recipients"]["root@web1.example.org"] == "ops@example.org"
    assert got["local_recipients"]["postmaster@localhost"] == "ops@example.org"
    assert set(got["local_recipients"]) == {
        f"{user}@{domain}"
        for user in ("root", "postmaster")
        for domain in ("web1.example.org", "web1", "localhost", "localhost.localdomain")
    }
    assert "@web1.example.org" not in got["local_recipients"], "no catch-all: other people's mail is left alone"


def test_local_mail_unset_leaves_postfix_alone():
    got = plan()
    assert got["local_recipients"] == {}
    assert got["main_cf"]["virtual_alias_maps"] is None
    assert "local_recipients" not in got["maps"]


def test_local_recipients_are_configurable():
    got = plan(postfix_local_mail_to="ops@example.org", postfix_local_recipients=["root", "www-data"])
    assert {key.partition("@")[0] for key in got["local_recipients"]} == {"root", "www-data"}


@pytest.mark.parametrize(
    ("variables", "variable"),
    [
        ({"postfix_local_mail_to": "ops"}, "postfix_local_mail_to"),
        ({"postfix_local_mail_to": "ops@example.org\nrelayhost = evil"}, "postfix_local_mail_to"),
        (
            {"postfix_local_mail_to": "ops@example.org", "postfix_local_recipients": ["root@x.org"]},
            "postfix_local_recipients",
        ),
        (
            {"postfix_local_mail_to": "ops@example.org", "postfix_local_recipients": ["ro ot"]},
            "postfix_local_recipients",
        ),
        ({"postfix_local_mail_to": "ops@example.org", "postfix_local_recipients": [""]}, "postfix_local_recipients"),
        (
            {"postfix_local_mail_to": "ops@example.org", "postfix_main_cf": {"virtual_alias_maps": "hash:/etc/x"}},
            "postfix_main_cf.virtual_alias_maps",
        ),
        ({"postfix_queue_lifetime": "two days"}, "postfix_queue_lifetime"),
        ({"postfix_delay_warning_time": "4 hours"}, "postfix_delay_warning_time"),
        (
            {"postfix_queue_lifetime": "2d", "postfix_main_cf": {"maximal_queue_lifetime": "1d"}},
            "postfix_main_cf.maximal_queue_lifetime",
        ),
        ({"postfix_relay_auth_required": True}, "postfix_relay_username"),
        ({"postfix_relay_auth_required": True, "postfix_relay_username": "u"}, "postfix_relay_password"),
        ({"postfix_relay_provider": "sendgrid", "postfix_relay_host": ""}, "postfix_relay_password"),
    ],
)
def test_operator_inputs_refused_naming_the_variable(variables, variable):
    assert refused(**variables).startswith(variable)


def test_queue_lifetime_and_delay_warning():
    cf = plan(postfix_queue_lifetime="2d", postfix_delay_warning_time="4h")["main_cf"]
    assert (cf["maximal_queue_lifetime"], cf["bounce_queue_lifetime"], cf["delay_warning_time"]) == ("2d", "2d", "4h")
    cf = plan()["main_cf"]
    assert (cf["maximal_queue_lifetime"], cf["bounce_queue_lifetime"], cf["delay_warning_time"]) == (None, None, None)


def test_auth_required_accepts_complete_credentials():
    got = plan(postfix_relay_auth_required=True, postfix_relay_username="u", postfix_relay_password=PASSWORD)
    assert got["main_cf"]["smtp_sasl_auth_enable"] == "yes"


def test_postfix_main_cf_may_set_what_the_role_leaves_unset():
    cf = plan(postfix_main_cf={"virtual_alias_maps": "hash:/etc/postfix/virtual", "maximal_queue_lifetime": "1d"})[
        "main_cf"
    ]
    assert (cf["virtual_alias_maps"], cf["maximal_queue_lifetime"]) == ("hash:/etc/postfix/virtual", "1d")
