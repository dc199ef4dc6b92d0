# SPDX-License-Identifier: GPL-3.0-or-later
"""The role's promises on a real Debian container with systemd, relaying to the lab relay.

SASL over STARTTLS with certificate verification (port 2587), then implicit TLS on a forwarded
port (30002) on the same host: check mode on a fresh host predicts the real run, a second run and
a check run change nothing, mail arrives with the expected envelope and From, the password shows
nowhere at -vvv nor in a world-readable file, and each bad input is refused naming the variable
with main.cf left byte-identical.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-role-h1"
SENDER = fleet.SENDER


@pytest.fixture(scope="module")
def peers():
    return lab.info()


@pytest.fixture(scope="module")
def host(peers):
    fleet.start_host(HOST, "h1.smtp-relay.test")
    yield HOST
    fleet.remove_host(HOST)


def relay_vars(peers, **overrides):
    return fleet.sasl_vars(**overrides)


def play(tmp_path, variables, *options, check_mode=False):
    """smtp.relay.configure on the host: (rc, changed task names, output)."""
    rc, changed, output = fleet.play(
        tmp_path, [HOST], "smtp.relay.configure", variables, *options, check_mode=check_mode
    )
    return rc, changed[HOST], output


def on_host(*command):
    return fleet.on_host(HOST, *command)


def send_and_wait(subject):
    script = f"printf 'Subject: {subject}\\n\\nrole test\\n' | /usr/sbin/sendmail -t ops@smtp-relay.test"
    fleet.podman("exec", HOST, "sh", "-c", script)
    return records.wait_for(
        lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=90
    )


def test_sasl_starttls_verified(tmp_path, peers, host):
    wanted = relay_vars(peers)
    rc, predicted, output = play(tmp_path, wanted, check_mode=True)
    assert rc == 0, output
    rc, changed, output = play(tmp_path, wanted)
    assert rc == 0, output
    assert changed, "a fresh host must change"
    assert predicted == changed, "check mode on a fresh host must predict the real run"

    rc, again, output = play(tmp_path, wanted)
    assert (rc, again) == (0, []), output
    rc, checked, output = play(tmp_path, wanted, check_mode=True)
    assert (rc, checked) == (0, []), output

    subject = f"role sasl {time.time()}"
    record = send_and_wait(subject)
    assert record["listener"] == "submission"
    assert record["auth_user"] == peers["relay"]["username"]
    assert record["tls"]
    assert record["mail_from"] == SENDER
    assert records.headers(record)["From"].addresses[0].addr_spec == SENDER


def test_secret_is_nowhere(tmp_path, peers, host):
    password = peers["relay"]["password"]
    rc, _changed, output = play(tmp_path, relay_vars(peers), "-vvv")
    assert rc == 0, output
    assert password not in output
    readable = on_host(
        "sh", "-c", f"grep -rlsF -- '{password}' /etc /var /root /tmp /usr/local | xargs -r stat -c '%a %n'"
    ).split("\n")
    leaks = [line for line in readable if line and not line.startswith("600 ")]
    assert leaks == [], f"password in files readable beyond root: {leaks}"
    assert any(line.endswith("/etc/postfix/sasl_passwd") for line in readable)
    assert on_host("sh", "-c", "ls /etc/postfix | grep -c '~$' || true").strip() == "0"


def test_implicit_tls_on_a_forwarded_port(tmp_path, peers, host):
    wanted = relay_vars(peers, postfix_relay_port=peers["relay"]["ports"]["forward"], postfix_relay_tls="implicit")
    rc, _changed, output = play(tmp_path, wanted)
    assert rc == 0, output
    assert "smtp_tls_wrappermode = yes" in on_host("postconf", "smtp_tls_wrappermode")
    rc, again, output = play(tmp_path, wanted)
    assert (rc, again) == (0, []), output
    record = send_and_wait(f"role implicit {time.time()}")
    assert record["listener"] == "forward"
    assert record["port"] == peers["relay"]["ports"]["forward"]
    assert record["auth_user"] == peers["relay"]["username"]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"postfix_relay_port": 465, "postfix_relay_tls": "starttls"}, "postfix_relay_tls"),
        ({"postfix_relay_port": 587, "postfix_relay_tls": "implicit"}, "postfix_relay_tls"),
        ({"postfix_relay_host": "[relay.smtp-relay.test:587]"}, "postfix_relay_host"),
        ({"postfix_relay_host": "relay.smtp-relay.test\nmydestination = evil"}, "postfix_relay_host"),
        ({"postfix_relay_provider": "postmark"}, "postfix_relay_provider"),
        ({"postfix_relay_tls": "none", "postfix_relay_port": 25}, "postfix_relay_tls"),
        ({"postfix_sender_address": "root@elsewhere.org"}, "postfix_sender_address"),
        ({"postfix_relay_password": ""}, "postfix_relay_password"),
        ({"postfix_relay_auth_required": True, "postfix_relay_username": ""}, "postfix_relay_username"),
        ({"postfix_local_mail_to": "ops at campus"}, "postfix_local_mail_to"),
        ({"postfix_queue_lifetime": "forever"}, "postfix_queue_lifetime"),
    ],
)
def test_bad_input_refused_and_host_untouched(tmp_path, peers, host, overrides, variable):
    before = on_host("sh", "-c", "sha256sum /etc/postfix/main.cf 2>/dev/null || echo absent")
    rc, changed, output = play(tmp_path, relay_vars(peers, **overrides))
    assert rc != 0
    assert changed == []
    assert variable in fleet.failures(output), output
    assert peers["relay"]["password"] not in output
    assert on_host("sh", "-c", "sha256sum /etc/postfix/main.cf 2>/dev/null || echo absent") == before
