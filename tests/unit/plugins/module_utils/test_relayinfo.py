# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.info import (
    compare,
    configured_credentials,
    gather,
    map_references,
    parse_queue,
    relay_info,
    relay_mode,
)

from .postfix_fake import FakePostfix

NOW = 1_700_000_000
SECRET = "pa55w0rd-never-shown"


class Host:
    """FakePostfix for postconf, plus `postfix status` and `postqueue -j` answers."""

    def __init__(self, running=True, queue_lines=(), queue_rc=0):
        self.postfix = FakePostfix()
        self.running = running
        self.queue_lines = queue_lines
        self.queue_rc = queue_rc

    def __call__(self, args):
        name = os.path.basename(args[0])
        if name == "postfix":
            state = "running: PID: 42" if self.running else "not running"
            return (0 if self.running else 1), "", f"postfix/postfix-script: the Postfix mail system is {state}\n"
        if name == "postqueue":
            if self.queue_rc:
                return self.queue_rc, "", "postqueue: fatal: Queue report unavailable - mail system is down\n"
            return 0, "".join(json.dumps(line) + "\n" for line in self.queue_lines), ""
        return self.postfix(args)


@pytest.fixture
def config(tmp_path):
    sasl = tmp_path / "sasl_passwd"
    sasl.write_text(f"# credentials\n[smtp.example.org]:587 user:{SECRET}\n")
    sasl.chmod(0o600)
    (tmp_path / "sasl_passwd.db").write_text("{}")
    (tmp_path / "sasl_passwd.db").chmod(0o600)
    os.utime(tmp_path / "sasl_passwd", (NOW - 100, NOW - 100))
    os.utime(tmp_path / "sasl_passwd.db", (NOW, NOW))
    canonical = tmp_path / "sender_canonical"
    canonical.write_text("root noreply@example.org\n")
    (tmp_path / "main.cf").write_text(
        "relayhost = [smtp.example.org]:587\n"
        "smtp_tls_security_level = secure\n"
        "smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt\n"
        "smtp_sasl_auth_enable = yes\n"
        f"smtp_sasl_password_maps = hash:{sasl}\n"
        f"sender_canonical_maps = hash:{canonical}\n"
        "inet_interfaces = loopback-only\n"
        "mydestination =\n"
        "myorigin = example.org\n"
    )
    return tmp_path


def facts(config, **host):
    return gather(PostconfRunner(Host(**host)), str(config), now=lambda: NOW)


def test_gather_reads_settings_maps_and_mode(config):
    relay = facts(config)
    assert relay["postfix_installed"] is True
    assert relay["postfix_version"] == "3.7.11"
    assert relay["relayhost"] == "[smtp.example.org]:587"
    assert relay["relayhosts"] == [{"host": "smtp.example.org", "port": 587, "mx_lookup": False, "is_ip": False}]
    assert relay["tls_security_level"] == "secure"
    assert relay["tls_mode"] == "starttls"
    assert relay["tls_wrappermode"] is False
    assert relay["tls_ca_file"] == "/etc/ssl/certs/ca-certificates.crt"
    assert relay["sasl_enabled"] is True
    assert relay["sasl_key_matches"] is True
    assert relay["mode"] == "null_client"
    assert relay["service_running"] is True
    sasl = next(m for m in relay["maps"] if m["parameter"] == "smtp_sasl_password_maps")
    assert sasl["mode"] == "0600" and sasl["world_readable"] is False
    assert sasl["index_exists"] is True and sasl["fresh"] is True
    canonical = next(m for m in relay["maps"] if m["parameter"] == "sender_canonical_maps")
    assert canonical["exists"] is True and canonical["index_exists"] is False and canonical["fresh"] is False
    assert SECRET not in json.dumps(relay)


def test_stale_index_and_key_mismatch(config):
    os.utime(config / "sasl_passwd.db", (NOW - 1000, NOW - 1000))
    (config / "sasl_passwd").write_text(f"smtp.example.org:587 user:{SECRET}\n")
    relay = facts(config)
    sasl = next(m for m in relay["maps"] if m["parameter"] == "smtp_sasl_password_maps")
    assert sasl["fresh"] is False
    assert relay["sasl_key_matches"] is False


def test_unreadable_map_gives_unknown_key_match(config):
    (config / "sasl_passwd").unlink()
    assert facts(config)["sasl_key_matches"] is None


def test_queue_from_postqueue_json(config):
    lines = [
        {"queue_name": "deferred", "queue_id": "A1", "arrival_time": NOW - 3600,
         "recipients": [{"address": "a@x.test", "delay_reason": "connect to smtp.example.org[192.0.2.1]:587: Connection timed out"}]},  # noqa: E501
        {"queue_name": "deferred", "queue_id": "A2", "arrival_time": NOW - 60,
         "recipients": [{"address": "b@x.test", "delay_reason": "connect to smtp.example.org[192.0.2.1]:587: Connection timed out"},  # noqa: E501
                        {"address": "c@x.test", "delay_reason": "SASL authentication failed"}]},
        {"queue_name": "active", "queue_id": "B1", "arrival_time": NOW, "recipients": []},
        {"queue_name": "hold", "queue_id": "C1", "arrival_time": NOW, "recipients": []},
    ]  # fmt: skip
    queue = facts(config, queue_lines=lines)["queue"]
    assert (queue["deferred"], queue["active"], queue["hold"], queue["total"]) == (2, 1, 1, 4)
    assert queue["oldest_deferred_age"] == 3600
    assert queue["deferral_reasons"][0] == {
        "reason": "connect to smtp.example.org[192.0.2.1]:587: Connection timed out",
        "count": 2,
    }


def test_queue_unavailable_when_postfix_is_down(config):
    relay = facts(config, running=False, queue_rc=69)
    assert relay["service_running"] is False
    assert relay["queue"] is None
    assert "mail system is down" in relay["queue_error"]


def test_parse_queue_ignores_garbage_lines():
    assert parse_queue("not json\n\n", NOW)["total"] == 0


def test_postfix_missing():
    def nothing(args):
        return 127, "", f"{args[0]}: not found"

    relay = gather(PostconfRunner(nothing), "/nonexistent")
    assert relay["postfix_installed"] is False
    assert compare(relay, {"relayhost": "[a.example]:587"}) == [
        "relayhost: expected [a.example]:587, found nothing (Postfix is not installed)"
    ]


@pytest.mark.parametrize(
    ("relayhost", "interfaces", "destination", "mode"),
    [
        ("[r]:587", "loopback-only", "", "null_client"),
        ("[r]:587", "127.0.0.1, [::1]", "", "null_client"),
        ("[r]:587", "loopback-only", "$myhostname, localhost", "satellite"),
        ("[r]:587", "all", "", "satellite"),
        ("", "loopback-only", "", "other"),
    ],
)
def test_relay_mode(relayhost, interfaces, destination, mode):
    assert relay_mode(relayhost, interfaces, destination) == mode


def test_expect_lists_every_mismatch(config):
    relay = facts(config)
    mismatches = compare(
        relay,
        {
            "relayhost": "[smtp.example.org]:submission",  # same as :587
            "tls_security_level": "encrypt",
            "sasl_enabled": "yes",
            "mode": "satellite",
            "myorigin": "example.org",
            "queue.deferred": 0,
        },
    )
    assert mismatches == [
        "mode: expected satellite, found null_client",
        "tls_security_level: expected encrypt, found secure",
    ]


def test_expect_relayhost_difference_and_booleans(config):
    relay = facts(config)
    assert compare(relay, {"relayhost": "[smtp.example.org]:465", "sasl_enabled": False}) == [
        "relayhost: expected [smtp.example.org]:465, found [smtp.example.org]:587",
        "sasl_enabled: expected false, found true",
    ]


def test_expect_unknown_field_is_refused(config):
    with pytest.raises(SmtpRelayError, match=r"unknown field 'relay_host'.*known fields: .*relayhost"):
        compare(facts(config), {"relay_host": "x"})


def test_expect_bad_relayhost_is_refused(config):
    with pytest.raises(SmtpRelayError, match=r"expect\.relayhost"):
        compare(facts(config), {"relayhost": "[x:587]"})


def test_relay_info_raises_with_the_result_on_mismatch(config):
    with pytest.raises(SmtpRelayError) as info:
        relay_info(PostconfRunner(Host()), str(config), {"mode": "satellite"}, now=lambda: NOW)
    assert info.value.msg.startswith("1 setting(s) differ")
    assert info.value.details["mismatches"] == ["mode: expected satellite, found null_client"]
    assert info.value.details["relay"]["relayhost"] == "[smtp.example.org]:587"
    ok = relay_info(PostconfRunner(Host()), str(config), {"mode": "null_client"}, now=lambda: NOW)
    assert ok["mismatches"] == []


def test_map_references_skip_proxy_and_non_files():
    assert map_references("proxy:hash:/etc/a, inline:{x=y} lmdb:/etc/b") == [
        ("hash", "/etc/a"),
        ("inline", "{x=y}"),
        ("lmdb", "/etc/b"),
    ]


def test_configured_credentials_for_the_relayhost(config):
    value = f"hash:{config / 'sasl_passwd'}"
    assert configured_credentials(value, "[smtp.example.org]:587") == ("user", SECRET)
    assert configured_credentials(value, "[other.example.org]:587") is None


def test_expectations_on_the_queue_say_why_it_was_not_read(config):
    relay = facts(config, running=False, queue_rc=69)
    mismatches = compare(relay, {"queue.deferred": 0})
    assert mismatches == [
        "queue.deferred: expected 0, found nothing (Postfix is not running and the queue could not be read: "
        + relay["queue_error"]
        + ")"
    ]
    with pytest.raises(SmtpRelayError, match="unknown field 'queue_size'"):
        compare(relay, {"queue_size": 0})
    assert compare(facts(config, queue_lines=[]), {"queue.deferred": 0}) == []
