# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults on a real host relaying to the lab relay: the relay down during converge and during a mail burst,
a main.cf change Postfix refuses on the host, and DNS servers that never answer.

Mail is counted at the relay by Subject (unique per burst): after the relay returns every mail arrives exactly
once, none lost and none duplicated. One host serves the whole module; it is removed even when a test fails.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration import fleet
from tests.integration.faults import hosts

pytestmark = pytest.mark.peers

HOST = "smtprelay-faults-f1"
PLAYBOOKS = Path(__file__).parent
BURST = 20
# An address on the lab network where no host is: DNS questions sent there are never answered.
SILENT_DNS = "10.89.100.250"
# A parameter of Postfix 3.9 that the hosts' Postfix 3.7 does not know: the controller's rules accept it, and
# only Postfix on the host (the staged main.cf's postconf -n) can tell that it would be ignored.
NEWER_POSTFIX_PARAMETER = {"smtp_tls_enable_rpk": "yes"}


@pytest.fixture(scope="module")
def host():
    with hosts.hosts_started({HOST: "f1.smtp-relay.test"}) as started:
        yield started[0]


@pytest.fixture(scope="module")
def configured(host, tmp_path_factory):
    """The host converged while the relay is down (the role does not need the relay to configure a host)."""
    with hosts.relay_down():
        rc, changed, output = hosts.configure(tmp_path_factory.mktemp("converge"), [host], hosts.relay_vars())
        assert rc == 0, output
        assert changed[host], "a fresh host must change"
        # Still down: the burst of the first test is submitted before the relay returns.
        subjects = hosts.burst_subjects("relay down during converge", BURST)
        hosts.send_mails(host, subjects)
        queued = hosts.queue_size(host)
    return {"subjects": subjects, "queued_while_down": queued}


def report(what: str, subjects: list[str], seen) -> None:
    print(f"{what}: sent {len(subjects)}, received {sum(seen.values())} ({len(seen)} distinct)")


def assert_exactly_once(subjects: list[str], seen) -> None:
    lost = [s for s in subjects if seen[s] == 0]
    doubled = {s: n for s, n in seen.items() if n > 1}
    assert (lost, doubled) == ([], {}), f"lost {len(lost)}: {lost[:5]}; duplicated: {doubled}"


def test_burst_while_relay_down_arrives_once_after_it_returns(host, configured):
    subjects = configured["subjects"]
    # Every mail waited on the host while the relay was down: none was dropped or bounced at submission.
    assert configured["queued_while_down"] == BURST
    assert hosts.relay_answers(), "the relay must be back after the converge fixture"
    started = time.monotonic()
    seen = hosts.wait_for_all(host, subjects, timeout=120)
    report("relay down during converge", subjects, seen)
    print(f"all arrived {time.monotonic() - started:.0f}s after the relay returned")
    assert_exactly_once(subjects, seen)
    assert hosts.queue_size(host) == 0


def test_relay_stopped_in_the_middle_of_a_burst(host, configured):
    del configured  # the host must be configured; the burst of the converge test is not counted here
    subjects = hosts.burst_subjects("relay stopped mid-burst", 30)
    sender = hosts.send_mails_in_background(host, subjects, pause=0.3)
    try:
        deadline = time.monotonic() + 60
        while len(hosts.arrivals(subjects)) < 3:
            assert time.monotonic() < deadline, "the burst did not start arriving"
            time.sleep(0.1)
        with hosts.relay_down():
            before_stop = len(hosts.arrivals(subjects))
            _out, err = sender.communicate(timeout=120)
            assert sender.returncode == 0, err
            time.sleep(3)  # the queue manager tries the dead relay again
    finally:
        if sender.poll() is None:
            sender.kill()
    assert before_stop < len(subjects), "the relay must stop while the burst is still being delivered"
    seen = hosts.wait_for_all(host, subjects, timeout=120)
    report(f"relay stopped mid-burst after {before_stop} arrivals", subjects, seen)
    assert_exactly_once(subjects, seen)


def test_change_refused_on_the_host_leaves_the_live_config(host, configured, tmp_path):
    del configured
    before = hosts.config_state(host)
    rc, changed, output = hosts.configure(tmp_path, [host], hosts.relay_vars(postfix_main_cf=NEWER_POSTFIX_PARAMETER))
    assert rc != 0, output
    assert "smtp_tls_enable_rpk" in fleet.failures(output), output
    assert "Traceback" not in output
    assert changed[host] == []
    assert hosts.config_state(host) == before
    assert "smtp_tls_enable_rpk" not in fleet.on_host(host, "postconf", "-n")
    subjects = hosts.burst_subjects("after a refused change", 1)
    hosts.send_mails(host, subjects)
    assert_exactly_once(subjects, hosts.wait_for_all(host, subjects, timeout=60))


def test_change_refused_on_the_host_leaves_the_maps_too(host, configured, tmp_path):
    del configured
    before = hosts.config_state(host)
    variables = hosts.relay_vars(
        postfix_sender_address="changed@campus.smtp-relay.test", postfix_main_cf=NEWER_POSTFIX_PARAMETER
    )
    try:
        rc, _changed, output = hosts.configure(tmp_path, [host], variables)
        assert rc != 0, output
        assert "smtp_tls_enable_rpk" in fleet.failures(output), output
        assert hosts.config_state(host) == before
    finally:
        rc, _changed, output = hosts.configure(tmp_path / "restore", [host], hosts.relay_vars())
        assert rc == 0, output


def test_a_table_type_postfix_lacks_is_refused_and_mail_still_flows(host, configured, tmp_path):
    del configured
    assert "pcre" not in fleet.on_host(host, "postconf", "-m").split(), "postfix-pcre must not be installed"
    before = hosts.config_state(host)
    subjects = hosts.burst_subjects("after a table type Postfix lacks", 1)
    try:
        rc, _changed, output = hosts.configure(
            tmp_path, [host], hosts.relay_vars(postfix_main_cf={"smtp_header_checks": "pcre:/etc/postfix/checks"})
        )
        refused, unchanged = rc != 0, hosts.config_state(host) == before
        hosts.send_mails(host, subjects)
        seen = hosts.wait_for_all(host, subjects, timeout=20)
    finally:
        # A null value removes the parameter again: the host relays for the next tests.
        restore = hosts.relay_vars(postfix_main_cf={"smtp_header_checks": None})
        rc_restore, _changed, restore_output = hosts.configure(tmp_path / "restore", [host], restore)
        assert rc_restore == 0, restore_output
        hosts.wait_for_all(host, subjects, timeout=60)
    assert (refused, unchanged) == (True, True), output
    assert_exactly_once(subjects, seen)


def test_dns_that_never_answers_is_unknown_within_the_deadline(host, configured, tmp_path):
    del configured
    timeout, sender_deadline = 2, 8
    # dnspython: what relay_check (MX), sender_check and allowlist_request ask given name servers with.
    fleet.on_host(host, "apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-dnspython")
    # The host's own resolver too, with the C library's default retries (5 s, twice per server and question).
    fleet.on_host(host, "sh", "-c", "cp /etc/resolv.conf /root/resolv.conf.faults")
    fleet.on_host(host, "sh", "-c", f"echo 'nameserver {SILENT_DNS}' > /etc/resolv.conf")
    try:
        variables = {
            "silent_dns": SILENT_DNS,
            "probe_timeout": timeout,
            "sender_deadline": sender_deadline,
            # Not a reserved name, so that its checks reach DNS (only ever asked of the silent server).
            "sender_domain": "faults-smtp-relay.org",
        }
        rc, _changed, output = fleet.play(tmp_path, [host], str(PLAYBOOKS / "dns_silent.yml"), variables)
    finally:
        fleet.on_host(host, "sh", "-c", "cp /root/resolv.conf.faults /etc/resolv.conf")
    assert rc == 0, output
    assert "Traceback" not in output
    tasks = hosts.tasks_of(output)
    # Seconds a module execution costs beyond its own work (connection, upload, Python start).
    overhead = 10
    bounds = {
        "Run relay_check, relay found through the host's resolver": 6 * timeout,
        "Run relay_check, relay found through its MX records": 6 * timeout,
        "Run sender_check": sender_deadline,
        "Run sender_check, unknown fails when told": sender_deadline,
        # A few lookups (the name, its addresses, the relay's), each bounded by the timeout.
        "Run allowlist_request": 8 * timeout,
    }
    for name, bound in bounds.items():
        seconds, results = tasks[name]
        result = results[host]
        print(f"{name}: {seconds:.1f}s (bound {bound}s + {overhead}s)")
        assert seconds <= bound + overhead, f"{name} took {seconds:.0f}s"
        assert "unknown" in {check["status"] for check in checks_of(result)}, f"{name}: {json.dumps(result)[:3000]}"
    assert tasks["Run sender_check"][1][host]["valid"] is False
    assert tasks["Run sender_check, unknown fails when told"][1][host]["failed"] is True
    assert not tasks["Run relay_check, relay found through its MX records"][1][host].get("valid"), output


def checks_of(result: dict) -> list[dict]:
    """Every check of a module result: relay_check and allowlist_request list them, sender_check per domain."""
    found = list(result.get("checks", []))
    for domain in (result.get("domains") or {}).values():
        found.extend(domain.get("checks", []))
    relay = result.get("relay")
    if isinstance(relay, dict):
        found.extend(relay.get("checks", []))
    return found
