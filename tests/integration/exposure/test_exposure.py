# SPDX-License-Identifier: GPL-3.0-or-later
"""No open relay, nothing exposed: a configured host listens on loopback only, nothing answers from another
container on the lab network, and mail to an outside domain leaves through the relay alone.

The probe runs from a short-lived container of the peers image on the lab network. A control listener opened on
the host's wildcard address for the probe's duration must answer: the probe would see a port left open.
"""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.integration import fleet
from tests.integration.faults import hosts
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-exposure-e1"
# SMTP, submissions, submission, and ports the lab and common setups use for SMTP.
MAIL_PORTS = {25, 465, 587, 2525, 2587, 10025}
CONTROL_PORT = 2999
LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|\[::1\]|\[::ffff:127\.\d+\.\d+\.\d+\]):\d+$")
PROBE = """
import json, socket, sys
results = {}
for address, port in json.loads(sys.argv[1]):
    try:
        with socket.create_connection((address, port), timeout=3):
            results[f"{address} {port}"] = "open"
    except ConnectionRefusedError:
        results[f"{address} {port}"] = "refused"
    except OSError as e:
        results[f"{address} {port}"] = type(e).__name__
print(json.dumps(results))
"""
# A listener on every address of the host (IPv4 and IPv6), its pid written where the test finds it.
CONTROL = f"""
import os, socket, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", {CONTROL_PORT}))
s.listen()
open("/run/smtprelay-control.pid", "w").write(str(os.getpid()))
time.sleep(600)
"""


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    with hosts.hosts_started({HOST: "e1.smtp-relay.test"}) as started:
        rc, _changed, output = hosts.configure(tmp_path_factory.mktemp("converge"), started, hosts.relay_vars())
        assert rc == 0, output
        yield started[0]


def listeners(host: str, protocol: str) -> list[str]:
    """Local addresses the host listens on ("t" TCP, "u" UDP), as ss prints them."""
    return [line.split()[3] for line in fleet.on_host(host, "ss", f"-ln{protocol}H").splitlines() if line.strip()]


def lab_addresses(host: str) -> list[str]:
    networks = json.loads(fleet.podman("inspect", "-f", "{{json .NetworkSettings.Networks}}", host).stdout)
    network = networks[lab.NETWORK]
    return [a for a in (network["IPAddress"], network.get("GlobalIPv6Address")) if a]


def probe(targets: list[tuple[str, int]]) -> dict:
    """Connect to each (address, port) from another container on the lab network: open, refused or an error."""
    done = fleet.podman(
        "run", "--rm", "--network", lab.NETWORK, lab.PEERS_IMAGE, "python3", "-c", PROBE, json.dumps(targets)
    )
    return json.loads(done.stdout)


def test_listens_on_loopback_only(host):
    tcp, udp = listeners(host, "t"), listeners(host, "u")
    print(f"listening: tcp {tcp}, udp {udp}")
    assert "127.0.0.1:25" in tcp, "Postfix must listen on loopback (else this test proves nothing)"
    assert [a for a in tcp + udp if not LOOPBACK.match(a)] == []


def test_nothing_answers_from_another_container(host):
    ports = MAIL_PORTS | {int(a.rpartition(":")[2]) for a in listeners(host, "t")}
    addresses = lab_addresses(host)
    assert len(addresses) == 2, f"the host should have an IPv4 and an IPv6 address on the lab network: {addresses}"
    targets = [(a, p) for a in addresses for p in sorted(ports | {CONTROL_PORT})]
    fleet.podman("exec", "-d", host, "python3", "-c", CONTROL)
    try:
        deadline = time.monotonic() + 20
        while f":{CONTROL_PORT}" not in " ".join(listeners(host, "t")):
            assert time.monotonic() < deadline, "the control listener did not start"
            time.sleep(0.2)
        results = probe(targets)
    finally:
        fleet.on_host(host, "sh", "-c", "kill $(cat /run/smtprelay-control.pid) 2>/dev/null; true")
    print(f"probed from another container: {results}")
    control = {k: v for k, v in results.items() if k.endswith(f" {CONTROL_PORT}")}
    assert set(control.values()) == {"open"}, f"the probe must see a port left open: {control}"
    exposed = {k: v for k, v in results.items() if v == "open" and k not in control}
    assert exposed == {}


def test_mail_to_an_outside_domain_leaves_only_through_the_relay(host):
    since = fleet.on_host(host, "date", "+%s").strip()
    subject = hosts.burst_subjects("outside domain", 1)[0]
    hosts.send_mails(host, [subject], recipient="someone@outside.example")
    record = records.wait_for(
        lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=60
    )
    assert record["rcpt_tos"] == ["someone@outside.example"]
    assert record["listener"] == "submission"
    queue_id = re.search(r"\bid ([0-9A-F]{6,})", str(records.headers(record)["Received"])).group(1)
    log = fleet.on_host(
        host, "journalctl", "-o", "cat", "--no-pager", "--since", f"@{since}", "SYSLOG_IDENTIFIER=postfix/smtp"
    )
    deliveries = [line for line in log.splitlines() if line.startswith(f"{queue_id}: to=")]
    attempts = re.findall(r"relay=([^,]+)", log)
    print(f"postfix/smtp since the mail was sent: relays {sorted(set(attempts))}; deliveries {deliveries}")
    assert len(deliveries) == 1 and "status=sent" in deliveries[0], log
    port = lab.info()["relay"]["ports"]["submission"]
    assert [a for a in attempts if not re.fullmatch(rf"relay\.smtp-relay\.test\[[0-9a-f.:]+\]:{port}", a)] == []
    assert "connect to" not in log, log
    assert fleet.on_host(host, "postqueue", "-p").strip() == "Mail queue is empty"
