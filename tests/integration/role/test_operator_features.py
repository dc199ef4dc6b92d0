# SPDX-License-Identifier: GPL-3.0-or-later
"""Operator features of the role on a real host, with mail arriving at the lab relay.

Root's mail (what cron, unattended-upgrades and daemons send to a bare ``root``) reaches the operations address
with the approved sender, and the queue settings are what Postfix runs with.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import fleet
from tests.integration.role.test_role import SENDER, relay_vars
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-operator-h1"
OPS = "ops@campus.smtp-relay.test"


@pytest.fixture(scope="module")
def peers():
    return lab.info()


@pytest.fixture(scope="module")
def host(peers):
    fleet.start_host(HOST, "h2.smtp-relay.test")
    yield HOST
    fleet.remove_host(HOST)


def wanted(peers, **overrides):
    return relay_vars(
        peers,
        postfix_local_mail_to=OPS,
        postfix_queue_lifetime="2d",
        postfix_delay_warning_time="4h",
        **overrides,
    )


def play(tmp_path, variables, check_mode=False):
    rc, changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", variables, check_mode=check_mode)
    return rc, changed[HOST], output


def test_root_mail_reaches_the_operations_address(tmp_path, peers, host):
    rc, _changed, output = play(tmp_path, wanted(peers))
    assert rc == 0, output
    rc, again, output = play(tmp_path, wanted(peers))
    assert (rc, again) == (0, []), output

    subject = f"cron job output {time.time()}"
    # What cron does with a job's output: sendmail to the bare local user, From: root (Debian's cron).
    script = (
        f"printf 'From: root\\nTo: root\\nSubject: {subject}\\n\\nbackup done\\n'"
        " | /usr/sbin/sendmail -i -FCronDaemon -oem root"
    )
    fleet.podman("exec", HOST, "sh", "-c", script)
    record = records.wait_for(
        peers["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=90
    )
    assert record["rcpt_tos"] == [OPS]
    assert record["mail_from"] == SENDER, "the approved sender, not root@<host>"


def test_queue_settings_are_what_postfix_runs_with(tmp_path, peers, host):
    rc, _changed, output = play(tmp_path, wanted(peers))
    assert rc == 0, output
    got = fleet.on_host(HOST, "postconf", "-h", "maximal_queue_lifetime", "bounce_queue_lifetime", "delay_warning_time")
    assert got.split() == ["2d", "2d", "4h"]


def test_unsetting_returns_to_postfix_defaults(tmp_path, peers, host):
    rc, _changed, output = play(tmp_path, relay_vars(peers))
    assert rc == 0, output
    assert fleet.on_host(HOST, "postconf", "-n", "virtual_alias_maps", "maximal_queue_lifetime").strip() == ""
    rc, predicted, output = play(tmp_path, relay_vars(peers), check_mode=True)
    assert (rc, predicted) == (0, []), output


def test_mail_survives_a_relay_outage_shorter_than_the_queue_lifetime(tmp_path, peers, host):
    rc, _changed, output = play(tmp_path, wanted(peers))
    assert rc == 0, output
    subjects = [f"outage {n} {time.time()}" for n in range(3)]
    lab.relay_stop()
    try:
        for subject in subjects:
            script = f"printf 'Subject: {subject}\\n\\nwaiting\\n' | /usr/sbin/sendmail -t ops@smtp-relay.test"
            fleet.podman("exec", HOST, "sh", "-c", script)
        deadline = time.monotonic() + 60
        while fleet.on_host(HOST, "postqueue", "-j").count('"deferred"') < len(subjects):
            assert time.monotonic() < deadline, "the mails were not deferred while the relay was down"
            time.sleep(1)
    finally:
        lab.relay_start()
    fleet.on_host(HOST, "postqueue", "-f")
    for subject in subjects:
        records.wait_for(peers["relay"]["records_dir"], lambda r, s=subject: records.headers(r)["Subject"] == s, 90)
    arrived = [r for r in records.messages(peers["relay"]["records_dir"]) if records.headers(r)["Subject"] in subjects]
    assert sorted(records.headers(r)["Subject"] for r in arrived) == sorted(subjects), "none lost, none twice"


def test_an_application_sender_outside_the_approved_domains_is_rewritten(tmp_path, peers, host):
    """The campus listener refuses senders outside campus.smtp-relay.test: with postfix_unapproved_senders_to the
    application's own sender leaves as the approved address (envelope and From), and the mail arrives."""
    outsider = "app@internal.lan"

    def send(label: str) -> str:
        subject = f"application mail {label} {time.time()}"
        script = (
            f"printf 'From: Billing <{outsider}>\\nSubject: {subject}\\n\\ninvoice\\n'"
            f" | /usr/sbin/sendmail -i -f {outsider} {OPS}"
        )
        fleet.podman("exec", HOST, "sh", "-c", script)
        return subject

    def arrived(subject: str, timeout: float) -> dict | None:
        try:
            return records.wait_for(
                peers["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=timeout
            )
        except AssertionError:
            return None

    rc, _changed, output = play(tmp_path, fleet.campus_vars())
    assert rc == 0, output
    refused = send("without the rewrite")
    assert arrived(refused, timeout=20) is None, "the campus relay must refuse the outsider (the control)"
    fleet.on_host(HOST, "postsuper", "-d", "ALL")

    variables = fleet.campus_vars(postfix_unapproved_senders_to=fleet.SENDER)
    rc, predicted, output = play(tmp_path, variables, check_mode=True)
    assert rc == 0 and predicted, output
    rc, changed, output = play(tmp_path, variables)
    assert (rc, changed) == (0, predicted), output
    record = arrived(send("rewritten"), timeout=90)
    assert record is not None, fleet.on_host(HOST, "postqueue", "-p")
    assert record["mail_from"] == fleet.SENDER
    assert fleet.SENDER in records.headers(record)["From"]
    assert outsider not in records.headers(record)["From"]
    rc, again, output = play(tmp_path, variables)
    assert (rc, again) == (0, []), output
