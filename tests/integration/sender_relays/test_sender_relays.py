# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-sender relays and credentials (postfix_sender_relays) on a real systemd container.

The main relay is the lab's campus listener (587, STARTTLS verified, no AUTH, campus senders only); mail from the
application domain app.smtp-relay.test, and from one campus address, goes through the submission listener (2587,
STARTTLS, AUTH required) with the lab's credentials. Check mode on a fresh host predicts the real run, a rerun and a
check run change nothing, each sender's mail arrives through its own listener (authenticated or not), the password
shows nowhere at -vvv nor in a file readable beyond root, a bad entry is refused naming it with the host left
alone, and removing the variable removes the table, the parameters and the credentials.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-senders-s1"
APP_SENDER = "app@app.smtp-relay.test"
BILLING = "billing@campus.smtp-relay.test"


@pytest.fixture(scope="module")
def peers():
    return lab.info()


@pytest.fixture(scope="module")
def host(peers):
    fleet.start_host(HOST, "senders1.smtp-relay.test")
    yield HOST
    fleet.remove_host(HOST)


def wanted(peers, **overrides):
    relay = peers["relay"]
    provider = {
        "senders": ["app.smtp-relay.test", BILLING],
        "host": relay["host"],
        "port": relay["ports"]["submission"],
        "username": relay["username"],
        "password": relay["password"],
    }
    return fleet.campus_vars(postfix_sender_relays=[provider], **overrides)


def play(tmp_path, variables, *options, check_mode=False):
    rc, changed, output = fleet.play(
        tmp_path, [HOST], "smtp.relay.configure", variables, *options, check_mode=check_mode
    )
    return rc, changed[HOST], output


def send(peers, sender, subject):
    """Mail submitted with sendmail, from ``sender`` (None: root, rewritten to the campus sender); its record."""
    envelope = f"-f {sender} " if sender else ""
    script = f"printf 'Subject: {subject}\\n\\nsender relays\\n' | /usr/sbin/sendmail {envelope}-t ops@smtp-relay.test"
    fleet.podman("exec", HOST, "sh", "-c", script)
    return records.wait_for(
        peers["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=90
    )


def test_each_sender_goes_through_its_own_relay(tmp_path, peers, host):
    rc, predicted, output = play(tmp_path, wanted(peers), check_mode=True)
    assert rc == 0, output
    rc, changed, output = play(tmp_path, wanted(peers))
    assert rc == 0, output
    assert changed, "a fresh host must change"
    assert predicted == changed, "check mode on a fresh host must predict the real run"
    rc, again, output = play(tmp_path, wanted(peers))
    assert (rc, again) == (0, []), output
    rc, checked, output = play(tmp_path, wanted(peers), check_mode=True)
    assert (rc, checked) == (0, []), output

    settings = fleet.on_host(
        HOST, "postconf", "-h", "sender_dependent_relayhost_maps", "smtp_sender_dependent_authentication"
    )
    assert settings.split() == ["hash:/etc/postfix/sender_relays", "yes"]
    lookup = fleet.on_host(HOST, "postmap", "-q", "@app.smtp-relay.test", "hash:/etc/postfix/sender_relays")
    assert lookup.strip() == f"[{peers['relay']['host']}]:{peers['relay']['ports']['submission']}"

    stamp = time.time()
    campus = send(peers, None, f"campus sender {stamp}")
    assert (campus["listener"], campus["auth_user"]) == ("campus", None)
    assert campus["mail_from"] == fleet.SENDER and campus["tls"]

    app = send(peers, APP_SENDER, f"app sender {stamp}")
    assert (app["listener"], app["auth_user"]) == ("submission", peers["relay"]["username"])
    assert app["mail_from"] == APP_SENDER and app["tls"]

    billing = send(peers, BILLING, f"billing address {stamp}")
    assert (billing["listener"], billing["auth_user"]) == ("submission", peers["relay"]["username"]), (
        "an address routes apart from the rest of its domain"
    )


def test_password_is_nowhere(tmp_path, peers, host):
    password = peers["relay"]["password"]
    rc, _changed, output = play(tmp_path, wanted(peers), "-vvv")
    assert rc == 0, output
    assert password not in output
    readable = fleet.on_host(
        HOST, "sh", "-c", f"grep -rlsF -- '{password}' /etc /var /root /tmp /usr/local | xargs -r stat -c '%a %n'"
    ).split("\n")
    leaks = [line for line in readable if line and not line.startswith("600 ")]
    assert leaks == [], f"password in files readable beyond root: {leaks}"
    assert any(line.endswith("/etc/postfix/sasl_passwd") for line in readable)


def test_a_bad_entry_is_refused_and_the_host_left_alone(tmp_path, peers, host):
    before = fleet.host_state(HOST)
    bad = wanted(peers)
    bad["postfix_sender_relays"][0]["port"] = peers["relay"]["ports"]["submissions"]
    rc, changed, output = play(tmp_path, bad)
    assert rc != 0 and changed == []
    assert "postfix_sender_relays[0].port: port 465 means implicit TLS" in fleet.failures(output)
    assert peers["relay"]["password"] not in output
    assert fleet.host_state(HOST) == before


def test_removing_the_variable_removes_routes_and_credentials(tmp_path, peers, host):
    rc, _changed, output = play(tmp_path, fleet.campus_vars())
    assert rc == 0, output
    rc, checked, output = play(tmp_path, fleet.campus_vars(), check_mode=True)
    assert (rc, checked) == (0, []), output
    parameters = ("sender_dependent_relayhost_maps", "smtp_sender_dependent_authentication", "smtp_sasl_password_maps")
    assert fleet.on_host(HOST, "postconf", "-n", *parameters).strip() == ""
    assert fleet.on_host(HOST, "postconf", "-h", "smtp_sasl_auth_enable").strip() == "no"
    files = fleet.on_host(HOST, "ls", "/etc/postfix").split()
    assert not [f for f in files if f.startswith(("sender_relays", "sasl_passwd"))], files
    campus = send(peers, None, f"campus only {time.time()}")
    assert campus["listener"] == "campus"
