# SPDX-License-Identifier: GPL-3.0-or-later
"""The role for a campus relay on one systemd container: port 587, STARTTLS verified against the test CA, no AUTH,
local senders rewritten to an approved domain. Converged once for the module; then a second converge and a check
run change nothing, the settings are the campus ones, nothing listens beyond loopback, and root's mail reaches the
lab relay's campus listener from the approved sender over TLS.
"""

from __future__ import annotations

import re
import time

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-campus-c1"
SENDER = fleet.SENDER
CAMPUS = {
    "postfix_relay_host": "relay.smtp-relay.test",
    "postfix_relay_port": 587,
    "postfix_relay_ca_file": fleet.CA_ON_HOST,
    "postfix_sender_address": SENDER,
    "postfix_allowed_sender_domains": ["campus.smtp-relay.test"],
    "postfix_main_cf": {"maillog_file": "/var/log/postfix.log"},
}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    fleet.start_host(HOST, "campus1.smtp-relay.test")
    try:
        rc, changed, output = fleet.play(tmp_path_factory.mktemp("converge"), [HOST], "smtp.relay.configure", CAMPUS)
        assert rc == 0, output
        assert changed[HOST], "a fresh host must change"
        yield HOST
    finally:
        fleet.remove_host(HOST)


def test_second_converge_changes_nothing(tmp_path, host):
    rc, changed, output = fleet.play(tmp_path, [host], "smtp.relay.configure", CAMPUS)
    assert (rc, changed[host]) == (0, []), output


def test_check_run_changes_nothing(tmp_path, host):
    rc, changed, output = fleet.play(tmp_path, [host], "smtp.relay.configure", CAMPUS, check_mode=True)
    assert (rc, changed[host]) == (0, []), output


def test_relays_to_the_campus_relay_and_listens_on_loopback(host):
    settings = fleet.on_host(
        host, "postconf", "relayhost", "inet_interfaces", "smtp_tls_security_level", "mydestination"
    )
    assert settings.splitlines() == [
        "relayhost = [relay.smtp-relay.test]:587",
        "inet_interfaces = loopback-only",
        "smtp_tls_security_level = secure",
        "mydestination =",
    ]


def test_nothing_listens_beyond_loopback(host):
    sockets = [line.split()[3] for line in fleet.on_host(host, "ss", "-Hltn").splitlines()]
    assert sockets, "Postfix listens on loopback: ss must list it"
    beyond = [s for s in sockets if not re.match(r"^(127\.0\.0\.1|\[::1\]):", s)]
    assert beyond == [], f"listening beyond loopback: {sockets}"


def test_roots_mail_arrives_from_the_approved_sender_over_tls(host):
    subject = f"campus {host} {time.time()}"
    script = f"printf 'Subject: {subject}\\n\\ncampus suite\\n' | /usr/sbin/sendmail -t ops@smtp-relay.test"
    fleet.podman("exec", host, "sh", "-c", script)
    record = records.wait_for(
        lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=60
    )
    assert record["mail_from"] == SENDER
    assert record["rcpt_tos"] == ["ops@smtp-relay.test"]
    assert record["listener"] == "campus"
    assert record["tls"]
    # root's mail keeps its display name: "From: root <noreply@...>"
    assert re.search(r"(?m)^From: (.* )?<?noreply@campus\.smtp-relay\.test>?\r?$", record["data"]), record["data"]
