# SPDX-License-Identifier: GPL-3.0-or-later
"""The smtp.relay.verify playbook on two configured hosts: clean, drifted by hand, queue deferred, CI mode."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration import fleet
from tests.peers import lab

pytestmark = pytest.mark.peers

HOSTS = {"smtprelay-verify-v1": "v1.smtp-relay.test", "smtprelay-verify-v2": "v2.smtp-relay.test"}
V1, V2 = HOSTS
COLUMNS = ("host", "relayhost", "tls", "auth", "probe", "deferred", "drift")


@pytest.fixture(scope="module")
def campus():
    return fleet.campus_vars()


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, campus):
    for name, fqdn in HOSTS.items():
        fleet.start_host(name, fqdn)
    rc, _changed, output = fleet.play(tmp_path_factory.mktemp("configure"), list(HOSTS), "smtp.relay.configure", campus)
    assert rc == 0, output
    yield list(HOSTS)
    for name in HOSTS:
        fleet.remove_host(name)


def table(output: str) -> dict:
    """The summary table, {host: {column: value}} (drift is the rest of the line)."""
    document, _end = json.JSONDecoder().raw_decode(output[output.index("{") :])
    for one_play in document["plays"]:
        for task in one_play["tasks"]:
            if task["task"]["name"] == "One line per host":
                (result,) = task["hosts"].values()  # run_once: one host speaks for the play
                lines = result["msg"]
                assert lines[0].split() == list(COLUMNS)
                rows = [dict(zip(COLUMNS, line.split(None, len(COLUMNS) - 1), strict=True)) for line in lines[1:]]
                return {row["host"]: row for row in rows}
    raise AssertionError(f"no summary table in the output:\n{output}")


def test_clean_fleet_passes(tmp_path, hosts, campus):
    rc, changed, output = fleet.play(tmp_path, hosts, "smtp.relay.verify", campus)
    assert rc == 0, output
    assert changed == {h: [] for h in hosts}
    rows = table(output)
    for host in hosts:
        assert (rows[host]["probe"], rows[host]["drift"]) == ("ok", "none"), rows[host]
        assert rows[host]["relayhost"] == "[relay.smtp-relay.test]:587"


def test_drift_on_one_host_fails_naming_host_and_field(tmp_path, hosts, campus):
    fleet.on_host(V2, "postconf", "-e", "relayhost = [relay.smtp-relay.test]:25")
    try:
        rc, _changed, output = fleet.play(tmp_path, hosts, "smtp.relay.verify", campus)
    finally:
        fleet.on_host(V2, "postconf", "-e", f"relayhost = [relay.smtp-relay.test]:{campus['postfix_relay_port']}")
    assert rc != 0
    rows = table(output)
    assert rows[V2]["drift"].startswith("relayhost: expected [relay.smtp-relay.test]:587, found"), rows[V2]
    assert (rows[V1]["probe"], rows[V1]["drift"]) == ("ok", "none")
    assert V2 in fleet.failures(output)
    assert V1 not in fleet.failures(output)


def test_probe_false_checks_the_inventory_without_contacting_hosts(tmp_path, campus):
    ghost = ["smtprelay-verify-nonexistent"]  # no such container: contacting it would fail
    rc, _changed, output = fleet.play(tmp_path, ghost, "smtp.relay.verify", campus, "-e", "probe=false")
    assert rc == 0, output
    assert table(output)[ghost[0]]["probe"] == "skipped"
    rc, _changed, output = fleet.play(
        tmp_path,
        ghost,
        "smtp.relay.verify",
        {**campus, "postfix_relay_port": 465, "postfix_relay_tls": "starttls"},
        "-e",
        "probe=false",
    )
    assert rc != 0
    assert "postfix_relay_tls" in fleet.failures(output)
    assert '"unreachable": true' not in output


def test_probe_false_refuses_a_bad_choice_naming_the_variable(tmp_path, campus):
    # The plan entry point has the role's argument spec: a bad choice is refused, not a bare KeyError.
    ghost = ["smtprelay-verify-nonexistent"]
    rc, _changed, output = fleet.play(
        tmp_path, ghost, "smtp.relay.verify", {**campus, "postfix_relay_tls": "bogus"}, "-e", "probe=false"
    )
    assert rc != 0
    assert "postfix_relay_tls" in fleet.failures(output), output
    assert "KeyError" not in output


def test_a_tls_override_in_postfix_main_cf_is_not_drift(tmp_path, hosts, campus):
    # The plan holds postfix_main_cf like everything else: the host and the expectation agree.
    wanted = {**campus, "postfix_main_cf": {"smtp_tls_security_level": "verify"}}
    rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.configure", wanted)
    assert rc == 0, output
    try:
        assert fleet.on_host(V1, "postconf", "-h", "smtp_tls_security_level").strip() == "verify"
        rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.verify", wanted)
        assert rc == 0, output
        assert table(output)[V1]["drift"] == "none"
    finally:
        rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.configure", campus)
        assert rc == 0, output


def test_a_relay_name_nobody_answers_for_fails_the_host(tmp_path, hosts, campus):
    # unknown is not success: with a resolver that never answers, the probe cannot tell, and CI must fail.
    fleet.on_host(V1, "sh", "-c", "cp /etc/resolv.conf /root/resolv.conf.bak")
    silent = "printf 'nameserver 10.89.100.250\noptions timeout:1 attempts:1\n' > /etc/resolv.conf"
    fleet.on_host(V1, "sh", "-c", silent)
    try:
        rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.verify", campus)
        relaxed, _changed, relaxed_output = fleet.play(
            tmp_path, [V1], "smtp.relay.verify", {**campus, "verify_fail_on": ["fail"]}
        )
    finally:
        fleet.on_host(V1, "sh", "-c", "cp /root/resolv.conf.bak /etc/resolv.conf")
    assert rc != 0, output
    assert table(output)[V1]["probe"] == "FAILED"
    assert "dns.address" in output
    assert relaxed == 0, relaxed_output
    assert table(relaxed_output)[V1]["probe"] == "ok"


def test_deferred_mail_is_reported(tmp_path, hosts, campus):
    lab.relay_stop()
    try:
        fleet.on_host(
            V1, "sh", "-c", "printf 'Subject: deferred\\n\\nx\\n' | /usr/sbin/sendmail -t ops@smtp-relay.test"
        )
        deadline = time.monotonic() + 60
        while '"deferred"' not in fleet.on_host(V1, "postqueue", "-j") and time.monotonic() < deadline:
            time.sleep(1)
        rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.verify", campus)
    finally:
        lab.relay_start()
    assert rc != 0
    row = table(output)[V1]
    assert row["probe"] == "FAILED"
    assert int(row["deferred"]) >= 1
    assert "tcp.refused" in fleet.failures(output)


def test_queue_thresholds_fail_ci_with_the_reasons_even_while_postfix_is_stopped(tmp_path, hosts, campus):
    lab.relay_stop()
    try:
        fleet.on_host(V1, "sh", "-c", "printf 'Subject: queued\\n\\nx\\n' | /usr/sbin/sendmail -t ops@smtp-relay.test")
        deadline = time.monotonic() + 60
        while '"deferred"' not in fleet.on_host(V1, "postqueue", "-j") and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        lab.relay_start()
    limits = {**campus, "verify_max_deferred": 0, "verify_max_deferred_age": 86400}
    rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.verify", limits)
    assert rc != 0
    failures = fleet.failures(output)
    assert re.search(r"queue: [1-9][0-9]* deferred, at most 0 allowed; top reasons: .*refused", failures), failures
    assert table(output)[V1]["probe"] == "ok", "the relay is back: only the queue fails the host"

    fleet.on_host(V1, "systemctl", "stop", "postfix")
    try:
        rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.verify", limits)
    finally:
        fleet.on_host(V1, "systemctl", "start", "postfix")
    assert rc != 0
    assert "deferred, at most 0 allowed" in fleet.failures(output), "the queue is read while Postfix is stopped"

    fleet.on_host(V1, "postqueue", "-f")
    deadline = time.monotonic() + 60
    while '"deferred"' in fleet.on_host(V1, "postqueue", "-j") and time.monotonic() < deadline:
        time.sleep(1)
    rc, _changed, output = fleet.play(tmp_path, [V1], "smtp.relay.verify", limits)
    assert rc == 0, output
