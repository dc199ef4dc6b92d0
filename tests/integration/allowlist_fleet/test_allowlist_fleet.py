# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.allowlist_request and the smtp.relay.allowlist playbook on two hosts with known addresses on the lab
network, checked against a DNS server serving their forward and reverse names (zones.py, on the lab bridge).

The relay is the lab relay's fixed addresses (10.89.100.2, fd00:89:100::2): finding the egress address only asks
the kernel for a route, so nothing is sent to it.
  al1: forward and reverse names match; Postfix installed, bound to a second address by bound.yml.
  al2: forward name matches, the PTR of its IPv4 names another host, its IPv6 has no PTR.
The fleet playbook runs once for the module (a second run and a check run must change nothing), then
requests.yml and bound.yml, whose results the tests read.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.integration import fleet, playbooks
from tests.integration.allowlist_fleet import zones
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HERE = Path(__file__).resolve().parent
RELAY_V4, RELAY_V6 = lab.PEERS_IP4, lab.PEERS_IP6
# Two destinations, tried in order, as Postfix's relayhost lists them: one per address family.
RELAY = f"[{RELAY_V4}]:587, [ipv6:{RELAY_V6}]:587"
AL1, AL2 = "smtprelay-allowlist-al1", "smtprelay-allowlist-al2"
# name: (FQDN, IPv4, IPv6, host vars)
HOSTS = {
    AL1: (
        "al1.allowlist.test",
        "10.89.100.201",
        "fd00:89:100::201",
        {
            "allowlist_purpose": "Order confirmations",
            "allowlist_volume_per_day": 300,
            "allowlist_sender_domains": ["allowlist.test"],
        },
    ),
    AL2: (
        "al2.allowlist.test",
        "10.89.100.202",
        "fd00:89:100::202",
        {"allowlist_purpose": "Monitoring alerts", "allowlist_contact": "al2-owners@allowlist.test"},
    ),
}
FORMATS = ["mail", "markdown", "json", "yaml", "csv"]
each_host = pytest.mark.parametrize("host", list(HOSTS))


def start(name: str, fqdn: str, ipv4: str, ipv6: str, *options: str) -> None:
    """A fresh Debian host with systemd and fixed addresses on the lab network."""
    fleet.remove_host(name)
    fleet.podman(
        "run", "-d", "--name", name, "--hostname", fqdn, "--network", lab.NETWORK, "--ip", ipv4, "--ip6", ipv6,
        "--systemd=always", *options, fleet.IMAGE, "/sbin/init",
    )  # fmt: skip


def host_vars(name: str) -> dict:
    own = HOSTS[name][3]
    other = next(v[1] for n, v in HOSTS.items() if n != name)
    # ansible_connection per host, not for all: tasks delegated to localhost must keep the local connection.
    return {"ansible_connection": "containers.podman.podman", "other_ipv4": other, **own}


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("allowlist")


@pytest.fixture(scope="module")
def inventory(tmp_path_factory, output_dir):
    variables = {
        "allowlist_output_dir": str(output_dir),
        "relay_v4": RELAY_V4,
        "allowlist_relay_host": RELAY,
        "allowlist_nameservers": [zones.LISTEN[0]],
        "allowlist_dns_port": zones.LISTEN[1],
        "allowlist_title": "Integration fleet",
        "allowlist_team": "Mail platform",
        "allowlist_contact": "#mail-ops",
    }
    return playbooks.inventory(
        tmp_path_factory.mktemp("inventory"),
        {name: host_vars(name) for name in HOSTS},
        groups={"postfix": [AL1]},
        variables=variables,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory, inventory):
    def run_playbook(playbook, check_mode=False) -> playbooks.Run:
        workdir = tmp_path_factory.mktemp(Path(str(playbook)).stem.replace(".", "_"))
        return playbooks.run(workdir, HOSTS, playbook, inventory=inventory, check_mode=check_mode)

    return run_playbook


@pytest.fixture(scope="module")
def converged(tmp_path_factory, run):
    """The DNS server and both hosts, prepared; then the fleet playbook as users run it."""
    lab.info()  # fails clearly when the lab (its network, the DNS server's address) is not up
    with zones.serving(tmp_path_factory.mktemp("dns")):
        try:
            # NET_ADMIN: bound.yml adds a second address for smtp_bind_address, as on a multi-homed server.
            start(AL1, *HOSTS[AL1][:3], "--cap-add", "NET_ADMIN")
            start(AL2, *HOSTS[AL2][:3])
            prepared = run(HERE / "prepare.yml")
            assert prepared.rc == 0, prepared.output
            first = run("smtp.relay.allowlist")
            assert first.rc == 0, first.output
            yield first
        finally:
            for name in HOSTS:
                fleet.remove_host(name)


@pytest.fixture(scope="module")
def requests(converged, run):
    done = run(HERE / "requests.yml")
    assert done.rc == 0, done.output
    return done


@pytest.fixture(scope="module")
def sent(converged, inventory, tmp_path_factory):
    """The fleet playbook as people run it (default callback, no -v), sending each host's request from the
    controller through the lab relay's submission port; every check of the relay's would-be public view fails."""
    relay = lab.info()["relay"]
    subject = f"allowlist fleet {time.time()}"
    extra = {
        "allowlist_output_dir": str(tmp_path_factory.mktemp("sent-files")),
        "allowlist_report_only": True,
        "allowlist_relay_public": True,
        "allowlist_subject": subject,
        "send": True,
        "allowlist_smtp_host": relay["ipv4"],
        "allowlist_smtp_port": relay["ports"]["submission"],
        "allowlist_smtp_ca_file": relay["ca_file"],
        "allowlist_smtp_username": relay["username"],
        "allowlist_smtp_password": relay["password"],
        "allowlist_mail_from": "allowlist@smtp-relay.test",
        "allowlist_mail_to": "relay-owners@smtp-relay.test",
    }
    variables = tmp_path_factory.mktemp("sent-vars") / "vars.yml"
    variables.write_text(yaml.safe_dump(extra))
    variables.chmod(0o600)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1")
    command = ["ansible-playbook", "-i", str(inventory), "smtp.relay.allowlist", "-e", f"@{variables}"]
    done = subprocess.run(command, text=True, capture_output=True, env=env, check=False)
    return {"rc": done.returncode, "output": done.stdout + done.stderr, "subject": subject, "relay": relay}


@pytest.fixture(scope="module")
def bound(converged, run):
    done = run(HERE / "bound.yml")
    assert done.rc == 0, done.output
    return done.result("Build the request from Postfix's settings (no relay_host given)", AL1)


def fail_ids(result: dict) -> list[str]:
    return [c["id"] for c in result["checks"] if c["status"] == "fail"]


# The fleet playbook, as molecule's idempotence and check steps ran it


def test_second_run_changes_nothing(converged, run):
    again = run("smtp.relay.allowlist")
    assert again.rc == 0, again.output
    assert again.changed == {name: [] for name in HOSTS}


def test_check_run_changes_nothing(converged, run):
    checked = run("smtp.relay.allowlist", check_mode=True)
    assert checked.rc == 0, checked.output
    assert checked.changed == {name: [] for name in HOSTS}


# The fleet files on the controller


def test_fleet_csv_has_one_row_per_host_sorted_with_the_addresses_used(converged, output_dir):
    lines = (output_dir / "allowlist.csv").read_text().splitlines()
    assert lines == [
        "fqdn,purpose,ipv4,ipv6,shared_egress,team,contact,volume_per_day,sender_domains,relay,monitoring,"
        "automatic_updates,package_lists_updated",
        "al1.allowlist.test,Order confirmations,10.89.100.201,fd00:89:100::201,,Mail platform,#mail-ops,300,"
        f'allowlist.test,"{RELAY}",,,',
        "al2.allowlist.test,Monitoring alerts,10.89.100.202,fd00:89:100::202,,Mail platform,al2-owners@allowlist.test,"
        f',,"{RELAY}",,,',
    ]


def test_fleet_markdown_has_the_title_and_a_row_per_host(converged, output_dir):
    markdown = (output_dir / "allowlist.md").read_text()
    assert markdown.startswith("# Integration fleet")
    assert re.search(
        r"\| al1\.allowlist\.test \| Order confirmations \| 10\.89\.100\.201 \| fd00:89:100::201 \|", markdown
    )


def test_each_host_gets_its_mail_text(converged, output_dir):
    mail = (output_dir / "al1.allowlist.test.txt").read_text()
    assert mail.startswith("Subject: Email sending: allowlist server")
    words = " ".join(mail.split())  # labels are padded to one width
    assert "IPv6 address: fd00:89:100::201" in words
    assert "Expected volume per day: 300" in words
    assert "Sender domains: allowlist.test" in words


# Failed checks in the output, and the requests sent


def test_failed_checks_show_in_the_playbook_output_without_v(sent):
    assert sent["rc"] == 0, sent["output"][-4000:]
    output = " ".join(sent["output"].split())
    for _fqdn, ipv4, _ipv6, _own in HOSTS.values():
        assert f"allowlist check address.not_global failed: {ipv4} is not a public address" in output, output[-4000:]


@each_host
def test_each_request_is_sent_from_the_controller_through_verified_tls(sent, host):
    fqdn = HOSTS[host][0]
    record = records.wait_for(
        sent["relay"]["records_dir"],
        lambda r: records.headers(r)["Subject"] == sent["subject"] and f"FQDN: {fqdn}" in " ".join(r["data"].split()),
        timeout=30,
    )
    assert (record["listener"], record["tls"], record["auth_user"]) == ("submission", True, sent["relay"]["username"])
    assert record["peer"] == lab.GATEWAY4, "sent from the controller, not from the host"
    assert record["rcpt_tos"] == ["relay-owners@smtp-relay.test"]


def test_the_password_is_not_in_the_output(sent):
    assert sent["relay"]["password"] not in sent["output"]


# smtp.relay.allowlist_request, case by case


@each_host
def test_fqdn_and_egress_addresses_are_the_hosts_own(requests, host):
    fqdn, ipv4, ipv6, _own = HOSTS[host]
    defaults = requests.result("Build the request from the host's defaults", host)
    assert defaults["request"]["fqdn"] == fqdn
    assert defaults["request"]["ipv4"] == [ipv4]
    assert defaults["request"]["ipv6"] == [ipv6]
    assert defaults["valid"], defaults["checks"]


@each_host
def test_the_names_check_out_as_dns_publishes_them(requests, host):
    checks = requests.result("Build the request from the host's defaults", host)["checks"]
    assert [c["id"] for c in checks].count("fqdn.forward_confirmed") == 2
    egress = [c["message"] for c in checks if c["id"] == "egress.detected"]
    assert len([m for m in egress if re.search(re.escape(RELAY_V4) + " is", m)]) == 1, egress


@each_host
def test_reverse_dns_as_published_for_each_host(requests, host):
    checks = requests.result("Build the request from the host's defaults", host)["checks"]
    expected = ["rdns.match", "rdns.match"] if host == AL1 else ["rdns.mismatch", "rdns.missing"]
    assert [c["id"] for c in checks if c["id"].startswith("rdns.")] == expected


@each_host
def test_an_address_the_fqdn_does_not_resolve_to_fails_naming_the_field(requests, host):
    mismatch = requests.result("Request an address the FQDN does not resolve to", host)
    assert mismatch["valid"] is False
    assert "fqdn.forward_mismatch" in mismatch["msg"]
    assert [c.get("field") for c in mismatch["checks"] if c["status"] == "fail"] == ["ipv4"]


@each_host
def test_a_fqdn_that_does_not_resolve_fails(requests, host):
    ghost = requests.result("Request a FQDN that does not resolve", host)
    assert ghost["valid"] is False
    assert "fqdn.unresolved" in ghost["msg"]


@each_host
def test_a_private_egress_towards_a_public_relay_fails(requests, host):
    detected = requests.result("Request towards a public relay with the detected address", host)
    assert detected["valid"] is False
    assert "address.not_global" in detected["msg"]


@each_host
def test_the_nat_egress_given_passes(requests, host):
    given = requests.result("Request towards a public relay with the NAT egress address given", host)
    # No PTR zone for the NAT address: its reverse lookup is unknown, which makes valid false, not failed.
    assert fail_ids(given) == []
    assert given["request"]["ipv4"] == ["11.22.33.44"]
    assert given["request"]["ipv6"] == []


@each_host
def test_a_shared_egress_range_fails_its_forward_check_unless_said_so(requests, host):
    unsaid = requests.result("Request a platform app's shared egress range without saying so", host)
    assert "fqdn.forward_mismatch" in fail_ids(unsaid)
    shared = requests.result("Request a platform app's shared egress range", host)
    assert fail_ids(shared) == [] and shared["valid"] is True, shared["checks"]
    skipped = [(c["id"], c["address"]) for c in shared["checks"] if c["status"] == "skip"]
    assert skipped == [
        ("fqdn.shared_egress", "11.22.34.7"),
        ("rdns.shared_egress", "11.22.34.7"),
        ("fqdn.shared_egress", "11.22.33.0/24"),
    ]
    assert shared["request"]["ipv4"] == ["11.22.34.7", "11.22.33.0/24"]
    assert shared["request"]["shared_egress"] is True
    assert shared["request"]["volume_per_day"] == 250
    assert shared["request"]["sender_domains"] == ["allowlist.test", "mail.allowlist.test"]


@each_host
def test_check_mode_renders_every_format_and_writes_nothing(requests, host):
    preview = requests.items("Render in every format in check mode", host)
    assert [r["changed"] for r in preview] == [True] * len(FORMATS)
    after = requests.items("Look for the files after check mode", host)
    assert [r["stat"]["exists"] for r in after] == [False] * len(FORMATS)


@each_host
def test_the_first_render_writes_what_it_rendered_and_the_second_changes_nothing(requests, host):
    first = requests.items("Render in every format", host)
    assert [r["changed"] for r in first] == [True] * len(FORMATS)
    second = requests.items("Render in every format again", host)
    assert [r["changed"] for r in second] == [False] * len(FORMATS)
    written = [base64.b64decode(r["content"]).decode() for r in requests.items("Read the written files", host)]
    assert written == [r["rendered"] for r in first]


@each_host
def test_the_structured_formats_hold_the_request(requests, host):
    fqdn, _ipv4, ipv6, _own = HOSTS[host]
    rendered = dict(zip(FORMATS, (r["rendered"] for r in requests.items("Render in every format", host)), strict=True))
    assert json.loads(rendered["json"])["fqdn"] == fqdn
    assert yaml.safe_load(rendered["yaml"])["ipv6"] == [ipv6]
    assert len(rendered["csv"].splitlines()) == 2  # the header and the host's row


@each_host
@pytest.mark.parametrize(
    ("index", "field"),
    [
        (0, "fqdn"),
        (1, "ipv4"),
        (2, "team"),
        (3, "contact"),
        (4, "contact"),
        (5, "format"),
        (6, "volume_per_day"),
        (7, "sender_domains"),
        (8, "shared_egress"),
    ],
    ids=[
        "bad name",
        "bad address",
        "empty team",
        "empty contact",
        "contact not an address",
        "unknown format",
        "negative volume",
        "bad sender domain",
        "shared egress not given",
    ],
)
def test_bad_input_is_refused_naming_the_field(requests, host, index, field):
    refused = requests.items("Give bad input", host)[index]
    assert refused["item"]["field"] == field
    assert "rendered" not in refused
    assert field in refused.get("msg", ""), refused


# Postfix's settings decide the egress address


def test_postfix_relayhost_is_the_relay(bound):
    assert bound["request"]["relay"] == f"[{RELAY_V4}]:587"


def test_the_bound_address_is_the_egress_and_ipv6_is_off(bound):
    assert bound["request"]["ipv4"] == ["10.89.100.211"]
    assert bound["request"]["ipv6"] == []
    assert "egress.protocol_disabled" in [c["id"] for c in bound["checks"]]


def test_the_bound_address_is_not_forward_confirmed(bound):
    assert "fqdn.forward_mismatch" in fail_ids(bound)
