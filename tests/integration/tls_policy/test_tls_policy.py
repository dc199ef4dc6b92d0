# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS policy per relay and the relay's name lookup, on a real host with mail arriving at the lab relay.

The host reaches the lab's ``wrongname`` listener (2465, implicit TLS, no AUTH) through a name only its /etc/hosts
knows, ``forward.internal``, as a port-forward to a provider is often set up. That listener's certificate names
WRONG_NAME, not the forward: with ``postfix_relay_tls_name`` set to it the certificate verifies and mail leaves;
with another expected name it does not, and relay_check says why. With Postfix's default lookup (DNS alone) the
forward is not found, and relay_check says so instead of passing through the system resolver.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.integration import fleet
from tests.peers import lab, records
from tests.peers.certs import WRONG_NAME

pytestmark = pytest.mark.peers

HOST = "smtprelay-tlspolicy-h1"
FORWARD = "forward.internal"
PLAYBOOK = str(fleet.ROOT / "tests" / "integration" / "tls_policy" / "relay_check.yml")
RCPT = "ops@smtp-relay.test"


@pytest.fixture(scope="module")
def peers():
    return lab.info()


@pytest.fixture(scope="module")
def host(peers):
    fleet.start_host(HOST, "tls.smtp-relay.test")
    fleet.on_host(HOST, "sh", "-c", f"echo '{peers['relay']['ipv4']} {FORWARD}' >> /etc/hosts")
    # relay_check asks DNS alone (as Postfix does by default) through dnspython.
    fleet.on_host(HOST, "apt-get", "install", "-y", "-q", "--no-install-recommends", "python3-dnspython")
    yield HOST
    fleet.remove_host(HOST)


def forward_vars(peers, **overrides) -> dict:
    forward = {
        "postfix_relay_host": FORWARD,
        "postfix_relay_port": peers["relay"]["ports"]["wrongname"],
        "postfix_relay_tls": "implicit",
        "postfix_relay_tls_name": WRONG_NAME,
        "postfix_relay_host_lookup": "native",
    }
    return fleet.campus_vars(**{**forward, **overrides})


def configure(tmp_path, variables, check_mode=False):
    rc, changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", variables, check_mode=check_mode)
    assert rc == 0, output
    return changed[HOST]


def relay_check(tmp_path, **variables) -> dict:
    rc, _changed, output = fleet.play(tmp_path, [HOST], PLAYBOOK, variables)
    assert rc == 0, output
    result, _end = json.JSONDecoder().raw_decode(output)
    task = next(t for p in result["plays"] for t in p["tasks"] if t["task"]["name"] == "Run relay_check")
    return task["hosts"][HOST]


def statuses(result: dict) -> dict:
    return {c["id"]: c["status"] for c in result["checks"]}


def send(subject: str) -> None:
    script = f"printf 'Subject: {subject}\\n\\nthrough the forward\\n' | /usr/sbin/sendmail -t {RCPT}"
    fleet.podman("exec", HOST, "sh", "-c", script)


def deferred_reasons() -> str:
    return fleet.on_host(HOST, "postqueue", "-j")


def wait_deferred(subject_count: int = 1, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while (queue := deferred_reasons()).count('"deferred"') < subject_count:
        assert time.monotonic() < deadline, f"mail was not deferred: {queue}"
        time.sleep(1)
    return queue


def test_the_expected_name_verifies_the_forward_and_mail_arrives(tmp_path, peers, host):
    changed = configure(tmp_path, forward_vars(peers))
    assert changed, "the first run configures the host"
    assert configure(tmp_path, forward_vars(peers)) == [], "the rerun changes nothing"
    assert configure(tmp_path, forward_vars(peers), check_mode=True) == [], "check mode predicts no change"

    policy = fleet.on_host(HOST, "postmap", "-q", f"[{FORWARD}]:2465", "hash:/etc/postfix/tls_policy").strip()
    assert policy.startswith(f"secure match={WRONG_NAME} servername={WRONG_NAME} protocols=!SSLv2:!SSLv3"), policy
    assert fleet.on_host(HOST, "postconf", "-h", "smtp_host_lookup").strip() == "native"

    subject = f"tls policy {time.time()}"
    send(subject)
    record = records.wait_for(peers["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, 90)
    assert record["listener"] == "wrongname"
    assert record["tls_version"], "the mail came over TLS"

    result = relay_check(tmp_path)
    found = statuses(result)
    assert result["valid"] is True, json.dumps(result["checks"], indent=1)
    assert (found["tls.policy"], found["cert.chain"], found["cert.name"], found["dns.address"]) == ("pass",) * 4
    assert result["tls"]["sni"] == WRONG_NAME


def test_a_wrong_expected_name_keeps_the_mail_and_fails_relay_check(tmp_path, peers, host):
    wrong = forward_vars(peers, postfix_relay_tls_name="provider.smtp-relay.test")
    predicted = configure(tmp_path, wrong, check_mode=True)
    assert predicted, "check mode sees the change"
    assert configure(tmp_path, wrong) == predicted, "check mode predicted the real run"
    fleet.on_host(HOST, "postsuper", "-d", "ALL")

    subject = f"wrong name {time.time()}"
    send(subject)
    queue = wait_deferred()
    assert "certificate" in queue.lower(), queue
    assert not [r for r in records.messages(peers["relay"]["records_dir"]) if records.headers(r)["Subject"] == subject]

    result = relay_check(tmp_path)
    found = statuses(result)
    assert result["valid"] is False
    assert found["cert.policy_name_mismatch"] == "fail", json.dumps(result["checks"], indent=1)
    fleet.on_host(HOST, "postsuper", "-d", "ALL")


def test_dns_lookup_of_a_name_only_in_etc_hosts_fails_relay_check(tmp_path, peers, host):
    dns_only = forward_vars(peers, postfix_relay_host_lookup="dns")
    assert configure(tmp_path, dns_only), "smtp_host_lookup changes"
    assert fleet.on_host(HOST, "postconf", "-h", "smtp_host_lookup").strip() == "dns"

    subject = f"dns only {time.time()}"
    send(subject)
    queue = wait_deferred()
    assert "name service error" in queue.lower() or "host not found" in queue.lower(), queue

    result = relay_check(tmp_path)
    found = statuses(result)
    assert found.get("dns.host_lookup") == "fail", json.dumps(result["checks"], indent=1)
    assert result["valid"] is False
    fleet.on_host(HOST, "postsuper", "-d", "ALL")


def test_send_test_authenticates_with_the_stored_credentials(tmp_path, peers, host):
    configure(tmp_path, fleet.sasl_vars())
    subject = f"stored credentials {time.time()}"
    result = relay_check(
        tmp_path,
        check_mail_from=fleet.SENDER,
        check_rcpt_to=[RCPT],
        check_send_test=True,
        check_subject=subject,
    )
    found = statuses(result)
    assert (found["auth.login"], found["message.sent"]) == ("pass", "pass"), json.dumps(result["checks"], indent=1)
    record = records.wait_for(peers["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, 30)
    assert record["auth_user"] == peers["relay"]["username"]
    assert peers["relay"]["password"] not in json.dumps(result)


@pytest.mark.parametrize("release", ["bullseye", "trixie"])
def test_postfix_3_5_and_3_10_read_the_policy(tmp_path, peers, release):
    """The table's syntax (servername=, protocols as exclusions) on the oldest and newest Postfix tested."""
    name = f"smtprelay-tlspolicy-{release}"
    fleet.start_host(name, f"{release}.smtp-relay.test", fleet.RELEASE_IMAGES[release])
    try:
        fleet.on_host(name, "sh", "-c", f"echo '{peers['relay']['ipv4']} {FORWARD}' >> /etc/hosts")
        rc, _changed, output = fleet.play(tmp_path, [name], "smtp.relay.configure", forward_vars(peers))
        assert rc == 0, output
        subject = f"tls policy on {release} {time.time()}"
        script = f"printf 'Subject: {subject}\\n\\nthrough the forward\\n' | /usr/sbin/sendmail -t {RCPT}"
        fleet.podman("exec", name, "sh", "-c", script)
        record = records.wait_for(peers["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, 90)
        assert record["listener"] == "wrongname"
        assert "warning" not in fleet.podman("exec", name, "postfix", "check", check=False).stderr.lower()
    finally:
        fleet.remove_host(name)
