# SPDX-License-Identifier: GPL-3.0-or-later
"""The role on each Debian release it supports: 11 (bullseye, Postfix 3.5), 12 (bookworm, 3.7), 13 (trixie, 3.10).

One systemd container per release, one at a time (removed before the next starts), from the image
tests/images/build.sh builds for it. On each: the campus relay case (the role with fleet.campus_vars(): root's
mail reaches the lab relay's campus listener from the approved sender over TLS; a second run changes nothing),
then the SASL case on the same host (fleet.sasl_vars(): the mail arrives authenticated, over TLS). The role's
compatibility_level follows the release's Postfix, Postfix reads the configuration without a warning, and relay_info
reads the host (its version, the service, the queue through postqueue -j), and relay_check runs on the
host's own Python (3.9 on Debian 11) through to a test mail.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.integration import fleet, playbooks
from tests.peers import lab, records

HERE = Path(__file__).parent

pytestmark = pytest.mark.peers

# release -> (Postfix version prefix, the compatibility_level the role sets there)
RELEASES = {
    "bullseye": ("3.5.", "2"),
    "bookworm": ("3.7.", "3.6"),
    "trixie": ("3.10.", "3.6"),
}


@pytest.fixture(scope="module", params=list(RELEASES))
def release(request):
    """(release, container): a fresh host of that release; module scope and one param at a time keep one up."""
    name = f"smtprelay-release-{request.param}"
    fleet.start_host(name, f"{request.param}.smtp-relay.test", image=fleet.RELEASE_IMAGES[request.param])
    yield request.param, name
    fleet.remove_host(name)


def configure(tmp_path, host, variables):
    rc, changed, output = fleet.play(tmp_path, [host], "smtp.relay.configure", variables)
    assert rc == 0, output
    return changed[host]


def send_and_wait(host, subject):
    script = f"printf 'Subject: {subject}\\n\\nreleases suite\\n' | /usr/sbin/sendmail -t ops@smtp-relay.test"
    fleet.podman("exec", host, "sh", "-c", script)
    return records.wait_for(
        lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=90
    )


def postfix_warnings(host) -> list[str]:
    """What Postfix said about its configuration: postconf's warnings, and its programs' logged warnings and
    backwards-compatibility notices (a compatibility_level below the one its defaults are written for)."""
    postconf = fleet.podman("exec", host, "postconf", "-n", check=False).stderr.splitlines()
    journal = fleet.on_host(host, "journalctl", "--no-pager", "-o", "short").splitlines()
    logged = [line for line in journal if re.search(r" postfix(/[\w.-]+)?\[\d+\]: ", line)]
    return postconf + [line for line in logged if re.search(r": (warning|fatal|panic):|backwards-compatible", line)]


def test_campus_relay(tmp_path, release):
    suite, host = release
    version, level = RELEASES[suite]
    assert configure(tmp_path, host, fleet.campus_vars()), "a fresh host must change"
    assert configure(tmp_path, host, fleet.campus_vars()) == [], "a second run must change nothing"

    assert fleet.on_host(host, "postconf", "-h", "mail_version").startswith(version)
    assert fleet.on_host(host, "postconf", "-h", "compatibility_level").strip() == level
    assert fleet.on_host(host, "postconf", "-h", "smtp_tls_security_level").strip() == "secure"
    record = send_and_wait(host, f"release {suite} campus {time.time()}")
    assert record["listener"] == "campus"
    assert record["mail_from"] == fleet.SENDER
    assert record["tls"]
    assert record["auth_user"] is None
    assert postfix_warnings(host) == []


def test_sasl_relay(tmp_path, release):
    suite, host = release
    assert configure(tmp_path, host, fleet.sasl_vars()), "switching to SASL must change the host"

    record = send_and_wait(host, f"release {suite} sasl {time.time()}")
    assert record["listener"] == "submission"
    assert record["auth_user"] == lab.info()["relay"]["username"]
    assert record["tls"]
    assert record["mail_from"] == fleet.SENDER
    assert postfix_warnings(host) == []


def test_relay_info_reads_the_host(tmp_path, release):
    suite, host = release
    version, level = RELEASES[suite]
    configure(tmp_path, host, fleet.sasl_vars())  # as the SASL case left it (nothing to change after it)
    inventory = playbooks.inventory(tmp_path, {host: {"ansible_connection": "containers.podman.podman"}})
    run = playbooks.run(tmp_path, [host], HERE / "relay_info.yml", inventory=inventory)
    assert run.rc == 0, run.output
    relay = run.result("Read the relay settings", host)["relay"]
    assert relay["postfix_version"].startswith(version)
    assert relay["compatibility_level"] == level
    assert relay["service_running"] is True
    assert relay["queue_error"] is None
    assert isinstance(relay["queue"]["total"], int)
    assert relay["relayhost"] == f"[{lab.info()['relay']['host']}]:{lab.info()['relay']['ports']['submission']}"


def test_relay_check_runs_on_the_hosts_python(tmp_path, release):
    """relay_check on the host's own Python (3.9 on Debian 11): static rules, probe and a test mail that arrives."""
    suite, host = release
    relay = lab.info()["relay"]
    subject = f"release {suite} relay_check {time.time()}"
    variables = {
        "ansible_connection": "containers.podman.podman",
        "ca_file": fleet.CA_ON_HOST,
        "relay_user": relay["username"],
        "relay_password": relay["password"],
        "mail_from": fleet.SENDER,
        "subject": subject,
    }
    inventory = playbooks.inventory(tmp_path, {host: variables})
    run = playbooks.run(tmp_path, [host], HERE / "relay_check.yml", inventory=inventory)
    assert run.rc == 0, run.output
    check = run.result("Check the relay and send a test mail", host)
    assert check["valid"] is True, check["checks"]
    failing = [c for c in check["checks"] if c["status"] == "fail"]
    assert failing == []
    record = records.wait_for(relay["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=60)
    assert record["auth_user"] == relay["username"]
    assert record["tls"]
