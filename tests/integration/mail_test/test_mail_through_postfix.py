# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.mail_test on a host the role configured for the lab relay: the marked mail arrives, the module says
so; a refused recipient is bounced; with the relay stopped the mail is deferred with Postfix's reason within the
timeout; with SASL the stored credentials are used; verify.yml's opt-in passes and fails on it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration import fleet, playbooks
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-mailtest-h1"
PLAYBOOK = Path(__file__).with_name("mail_test.yml")
TASK = "Send the test mail"
OPS = "ops@smtp-relay.test"
REFUSED_RCPT = "nobody@smtp-relay.test"  # the lab relay answers 550 for it


@pytest.fixture(scope="module")
def peers():
    return lab.info()


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    fleet.start_host(HOST, "mt1.smtp-relay.test")
    workdir = tmp_path_factory.mktemp("configure")
    rc, _changed, output = fleet.play(workdir, [HOST], "smtp.relay.configure", fleet.campus_vars())
    assert rc == 0, output
    yield HOST
    fleet.remove_host(HOST)


def mail_test(workdir: Path, *options, **variables) -> tuple[int, dict]:
    rc, _changed, output = fleet.play(workdir, [HOST], str(PLAYBOOK), {"mail_rcpt_to": OPS, **variables}, *options)
    return rc, {**playbooks.task_results(output).get(TASK, {}).get(HOST, {}), "output": output}


def arrived(peers, marker: str) -> dict:
    return records.wait_for(
        peers["relay"]["records_dir"], lambda r: records.headers(r)["X-Smtp-Relay-Test"] == marker, timeout=30
    )


def by_id(result: dict) -> dict:
    return {c["id"]: c for c in result["checks"]}


def test_the_marked_mail_arrives_at_the_relay_and_the_module_says_sent(tmp_path, peers, host):
    nameservers = [peers["dns"]["nameserver"]]
    rc, result = mail_test(tmp_path, mail_sender_check=True, mail_nameservers=nameservers, mail_fail_on=[])
    assert rc == 0, result["output"]
    assert (result["status"], result["changed"]) == ("sent", True), result
    assert result["relay"].startswith("relay.smtp-relay.test[") and result["relay"].endswith("]:587")
    assert result["reason"].startswith("250 ") and result["dsn"] == "2.0.0"
    record = arrived(peers, result["marker"])
    assert record["rcpt_tos"] == [OPS]
    assert record["mail_from"] == fleet.SENDER == result["sender"], "the sender Postfix used, rewritten by the role"
    assert f"<{result['message_id']}>" == records.headers(record)["Message-ID"]
    assert by_id(result)["mail.log"]["message"] == "mail log: journal"
    # The managed host has no dnspython: the sender checks say they did not run, they do not pretend.
    unran = by_id(result)["sender.checks"]
    assert unran["status"] == "unknown" and "dnspython" in unran["message"], result["checks"]


def test_sender_check_runs_on_the_sender_postfix_used(tmp_path, peers, host):
    fleet.on_host(HOST, "apt-get", "install", "-y", "-q", "python3-dnspython")
    nameservers = [peers["dns"]["nameserver"]]
    rc, result = mail_test(tmp_path, mail_sender_check=True, mail_nameservers=nameservers, mail_fail_on=[])
    assert rc == 0, result["output"]
    assert result["status"] == "sent"
    # The rewritten sender's domain was checked: the lab's .test domain is a special-use name.
    special = by_id(result)["domain.special_use"]
    assert special["status"] == "fail" and "campus.smtp-relay.test" in special["message"], result["checks"]
    assert by_id(result)["relay.addresses"]["status"] == "pass", "the host's relayhost was resolved for SPF"


def test_a_recipient_the_relay_refuses_is_bounced_with_its_reply(tmp_path, peers, host):
    rc, result = mail_test(tmp_path, mail_rcpt_to=REFUSED_RCPT)
    assert rc != 0, "fail_on: [fail] fails the task"
    assert (result["status"], result["failed"]) == ("bounced", True), result
    assert "550 5.1.1" in result["reason"] and result["dsn"] == "5.1.1"


def test_with_the_relay_stopped_the_mail_is_deferred_with_the_reason_within_the_timeout(tmp_path, peers, host):
    lab.relay_stop()
    try:
        started = time.monotonic()
        rc, result = mail_test(tmp_path, mail_timeout=40, mail_fail_on=[])
        took = time.monotonic() - started
    finally:
        lab.relay_start()
    assert rc == 0, result["output"]
    assert result["status"] == "deferred", result
    assert "Connection refused" in result["reason"] and result["queue_id"]
    assert result["elapsed"] < 40 and took < 40 + 30
    assert by_id(result)["mail.delivery"]["status"] == "fail"
    # The deferred mail is the marked one: once the relay is back, a flush delivers it.
    fleet.on_host(HOST, "postqueue", "-f")
    assert records.headers(arrived(peers, result["marker"]))["X-Smtp-Relay-Test"] == result["marker"]


def test_check_mode_sends_nothing(tmp_path, host):
    rc, result = mail_test(tmp_path, "--check")
    assert rc == 0, result["output"]
    assert (result["status"], result["changed"], result["marker"]) == ("skipped", False, None)
    assert fleet.on_host(HOST, "postqueue", "-j").strip() == ""


def test_verify_with_the_mail_test_passes_and_fails_on_it(tmp_path, host):
    opt_in = fleet.campus_vars(verify_mail_test=True, verify_mail_test_timeout=30)
    rc, _changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.verify", {**opt_in, "verify_mail_test_to": OPS})
    assert rc == 0, output
    mail = playbooks.task_results(output)["Send a marked test mail through Postfix and follow it to the relay"][HOST]
    assert mail["status"] == "sent"

    refused = {**opt_in, "verify_mail_test_to": REFUSED_RCPT}
    rc, _changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.verify", refused)
    assert rc != 0
    failure = fleet.failures(output)
    assert f"{HOST}: drift: none" in failure and "mail test: bounced: " in failure and "550 5.1.1" in failure

    rc, _changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.verify", opt_in)
    assert rc != 0
    assert "verify_mail_test_to is not set" in fleet.failures(output)


def test_with_sasl_the_stored_credentials_are_used_without_being_given(tmp_path, peers, host):
    sasl = fleet.sasl_vars()
    rc, _changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", sasl)
    assert rc == 0, output
    try:
        rc, result = mail_test(tmp_path)
        assert rc == 0, result["output"]
        assert result["status"] == "sent" and result["relay"].endswith(f"]:{sasl['postfix_relay_port']}")
        assert arrived(peers, result["marker"])["auth_user"] == peers["relay"]["username"]
        assert peers["relay"]["password"] not in result["output"]
    finally:
        rc, _changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", fleet.campus_vars())
        assert rc == 0, output
