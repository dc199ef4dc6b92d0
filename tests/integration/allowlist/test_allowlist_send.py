# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.allowlist_request with send=true from the controller, against the lab relay's listeners (send.yml).

The relay's certificate is verified with the lab CA (.peers/peers.json relay.ca_file): the request arrives through
STARTTLS on submission (AUTH) and on campus (no AUTH, campus senders only); a certificate that does not verify
(wrongname, expired, or a CA the controller does not know) gets nothing, with an error naming the option to fix.
The run is at -vvv with the default callback, what people paste into tickets: the password is in none of it.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time

import pytest
import yaml

from tests.integration import playbooks
from tests.peers import lab, records

pytestmark = pytest.mark.peers

PLAYBOOK = os.path.join(os.path.dirname(__file__), "send.yml")
REQUEST = {
    "fqdn": "app1.campus.smtp-relay.test",
    "purpose": "Order confirmations",
    "ipv4": ["10.89.100.0/28"],
    "ipv6": [],
    "shared_egress": True,
    "team": "Shop",
    "contact": "shop-ops@campus.smtp-relay.test",
    "volume_per_day": 1500,
    "sender_domains": ["campus.smtp-relay.test"],
    "relay": "[relay.smtp-relay.test]:587",
}


@pytest.fixture(scope="module")
def peers():
    return lab.info()


def run_playbook(workdir, variables: dict, *options: str, callback: str) -> subprocess.CompletedProcess:
    extra = workdir / "vars.yml"
    extra.write_text(yaml.safe_dump(variables))
    extra.chmod(0o600)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK=callback, ANSIBLE_NOCOLOR="1")
    command = ["ansible-playbook", "-i", "localhost,", "-c", "local", PLAYBOOK, "-e", f"@{extra}", *options]
    return subprocess.run(command, text=True, capture_output=True, env=env, check=False)


@pytest.fixture(scope="module")
def sent(tmp_path_factory, peers):
    relay = peers["relay"]
    subject = f"allowlist send {time.time()}"
    variables = {
        "request": REQUEST,
        "relay_address": relay["ipv4"],
        "ca_file": relay["ca_file"],
        "ports": relay["ports"],
        "username": relay["username"],
        "password": relay["password"],
        "subject": subject,
    }
    done = run_playbook(tmp_path_factory.mktemp("send"), variables, callback="ansible.builtin.json")
    verbose = run_playbook(
        tmp_path_factory.mktemp("verbose"), {**variables, "subject": subject + " verbose"}, "-vvv",
        callback="ansible.builtin.default",
    )  # fmt: skip
    return {
        "subject": subject,
        "tasks": playbooks.task_results(done.stdout),
        "output": done.stdout + done.stderr,
        "verbose": verbose.stdout + verbose.stderr,
        "records_dir": relay["records_dir"],
    }


def result(sent, task: str) -> dict:
    try:
        return sent["tasks"][task]["localhost"]
    except KeyError:
        raise AssertionError(f"no result of {task!r}:\n{sent['output'][-4000:]}") from None


def arrived(sent, suffix: str) -> dict:
    subject = f"{sent['subject']} {suffix}"
    return records.wait_for(sent["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=30)


def not_arrived(sent, suffix: str) -> None:
    subject = f"{sent['subject']} {suffix}"
    assert not [r for r in records.messages(sent["records_dir"]) if records.headers(r)["Subject"] == subject]


def test_sent_through_submission_with_starttls_and_auth(sent, peers):
    done = result(sent, "Send through submission (STARTTLS, AUTH)")
    assert done["changed"] is True and done["sent"]["sent"] is True, done
    record = arrived(sent, "submission")
    assert record["listener"] == "submission"
    assert record["tls"] is True and record["auth_user"] == peers["relay"]["username"]
    assert record["mail_from"] == "allowlist@smtp-relay.test"
    assert sorted(record["rcpt_tos"]) == ["copy@smtp-relay.test", "relay-owners@smtp-relay.test"]
    assert done["sent"]["message_id"] == records.headers(record)["Message-ID"]


def test_the_mail_holds_the_request_and_the_new_fields(sent):
    record = arrived(sent, "submission")
    body = " ".join(record["data"].split())
    for text in (
        "FQDN: app1.campus.smtp-relay.test",
        "IPv4 address: 10.89.100.0/28",
        "Shared egress: yes",
        "Expected volume per day: 1500",
        "Sender domains: campus.smtp-relay.test",
    ):
        assert text in body, body


def test_sent_through_campus_without_auth(sent):
    assert result(sent, "Send through campus (STARTTLS, no AUTH, campus senders only)")["sent"]["sent"] is True
    record = arrived(sent, "campus")
    assert (record["listener"], record["tls"], record["auth_user"]) == ("campus", True, None)


def test_a_sender_campus_does_not_admit_is_a_clear_failure(sent):
    refused = result(sent, "Send through campus as a sender it does not admit")
    assert refused["sent"] is False and "MAIL FROM:<allowlist@elsewhere.test>" in refused["msg"], refused
    not_arrived(sent, "campus outsider")


@pytest.mark.parametrize(
    ("task", "suffix", "field", "words"),
    [
        ("Send to a listener whose certificate names another host", "wrongname", "smtp_host", "mismatch"),
        ("Send to a listener whose certificate has expired", "expired", "ca_file", "expired"),
        ("Send through submission without the lab CA (the system's CAs do not know it)", "no ca", "ca_file", "issuer"),
    ],
    ids=["wrongname", "expired", "unknown CA"],
)
def test_a_certificate_that_does_not_verify_refuses_to_send(sent, task, suffix, field, words):
    refused = result(sent, task)
    assert refused["sent"] is False and refused["field"] == field, refused
    assert "not sent" in refused["msg"] and words in refused["msg"], refused["msg"]
    not_arrived(sent, suffix)


def test_check_mode_sends_nothing(sent):
    predicted = result(sent, "Send in check mode")
    assert predicted["changed"] is True and predicted["sent"]["sent"] is False
    not_arrived(sent, "check mode")


def test_a_request_built_and_sent_in_one_call(sent):
    done = result(sent, "Build a request checked against the lab DNS and send it in the same call")
    assert done["sent"]["sent"] is True, done
    assert done["request"]["volume_per_day"] == 10
    assert "fqdn.forward_confirmed" in [c["id"] for c in done["checks"]]
    arrived(sent, "built and sent")


def test_the_password_is_in_no_output_even_at_vvv(sent, peers):
    relay = peers["relay"]
    user, password = relay["username"], relay["password"]
    arrived(sent, "verbose submission")  # the verbose run did authenticate and send
    plain = (password, f"\0{user}\0{password}")
    forms = [password, *(base64.b64encode(t.encode()).decode().rstrip("=") for t in plain)]
    for output in (sent["output"], sent["verbose"]):
        assert not [form for form in forms if form in output]
    assert "Send through submission" in sent["verbose"] and "ESTABLISH LOCAL CONNECTION" in sent["verbose"]
