# SPDX-License-Identifier: GPL-3.0-or-later
"""Host facts for allowlist requests: the kernel's route choice on loopback, Postfix settings, update evidence,
and requests checked through dnspython against a small DNS server on loopback."""

from __future__ import annotations

import datetime
import os
import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from ansible_collections.smtp.relay.plugins.module_utils._allowlist import request as al
from ansible_collections.smtp.relay.plugins.module_utils._dns import DnspythonBackend, SystemBackend
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.host import HostInfo, parse_inet_protocols
from tests.unit.plugins.module_utils.allowlist_fakes import FakeHost


def runner_for(outputs):
    calls = []

    def runner(argv):
        calls.append(argv)
        return outputs.get(argv[0], (127, "", "not found"))

    runner.calls = calls
    return runner


# --- kernel routes (loopback only; a UDP connect sends nothing) ---------------------------------


def test_source_address_is_the_kernels_choice():
    assert HostInfo().source_address("127.0.0.1", 587) == "127.0.0.1"


def test_source_address_honours_a_bind_address():
    assert HostInfo().source_address("127.0.0.1", 25, bind="127.0.0.2") == "127.0.0.2"


def test_bind_address_not_on_the_host_raises():
    with pytest.raises(OSError):
        HostInfo().source_address("127.0.0.1", 25, bind="192.0.2.254")


def test_ipv6_loopback_when_available():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        got = HostInfo().source_address("::1")
    except OSError:
        pytest.skip("IPv6 disabled")
    assert got in ("::1", None)


def test_fqdn_is_a_name():
    name = HostInfo().fqdn()
    assert name and " " not in name


# --- Postfix settings ---------------------------------------------------------------------------


def test_postfix_settings_parsed_from_one_postconf_call():
    out = (
        "relayhost = [relay.example.test]:587\nsmtp_bind_address =\n"
        "smtp_bind_address6 = fd00::11\ninet_protocols = ipv4\n"
    )
    runner = runner_for({"postconf": (0, out, "")})
    settings = HostInfo(runner=runner, config_dir="/etc/postfix-out").postfix_settings()
    assert settings == {
        "relayhost": "[relay.example.test]:587",
        "smtp_bind_address": "",
        "smtp_bind_address6": "fd00::11",
        "inet_protocols": "ipv4",
    }
    assert runner.calls == [
        ["postconf", "-c", "/etc/postfix-out", "relayhost", "smtp_bind_address", "smtp_bind_address6", "inet_protocols"]
    ]


@pytest.mark.parametrize("rc", [127, 1])
def test_postfix_missing_or_unconfigured_is_none(rc):
    assert HostInfo(runner=runner_for({"postconf": (rc, "", "no main.cf")})).postfix_settings() is None


@pytest.mark.parametrize(
    ("value", "families"),
    [(None, {4, 6}), ("all", {4, 6}), ("ipv4", {4}), ("ipv6", {6}), ("ipv4, ipv6", {4, 6}), ("IPv4 ipv6", {4, 6})],
)
def test_inet_protocols(value, families):
    assert parse_inet_protocols(value) == families


# --- update evidence ----------------------------------------------------------------------------


def make_tree(tmp_path, unattended=True, stamp=None, lists=()):
    if unattended:
        (tmp_path / "usr/bin").mkdir(parents=True)
        (tmp_path / "usr/bin/unattended-upgrade").write_text("")
    if stamp is not None:
        (tmp_path / "var/lib/apt/periodic").mkdir(parents=True)
        path = tmp_path / "var/lib/apt/periodic/update-success-stamp"
        path.write_text("")
        os.utime(path, (stamp, stamp))
    for name, mtime in lists:
        (tmp_path / "var/lib/apt/lists").mkdir(parents=True, exist_ok=True)
        path = tmp_path / "var/lib/apt/lists" / name
        path.write_text("")
        os.utime(path, (mtime, mtime))
    return str(tmp_path)


@pytest.mark.parametrize(
    ("apt_config", "installed", "expected"),
    [
        ((0, "UU='1'\n", ""), True, "enabled"),
        ((0, "UU='0'\n", ""), True, "disabled"),
        ((0, "", ""), True, "disabled"),
        ((0, "UU='1'\n", ""), False, "disabled"),
        ((127, "", "not found"), True, "unknown"),
    ],
)
def test_automatic_updates(tmp_path, apt_config, installed, expected):
    host = HostInfo(runner=runner_for({"apt-config": apt_config}), root=make_tree(tmp_path, unattended=installed))
    assert host.automatic_updates() == expected


def test_package_lists_prefer_the_success_stamp(tmp_path):
    stamp = datetime.datetime(2025, 3, 1, 6, tzinfo=datetime.UTC).timestamp()
    newer = stamp + 86400 * 3
    root = make_tree(tmp_path, stamp=stamp, lists=[("deb.debian.org_dists_bookworm_InRelease", newer)])
    assert HostInfo(root=root).package_lists_updated().date().isoformat() == "2025-03-01"


def test_package_lists_from_newest_release_file(tmp_path):
    older = datetime.datetime(2025, 2, 1, tzinfo=datetime.UTC).timestamp()
    newer = datetime.datetime(2025, 2, 20, 23, tzinfo=datetime.UTC).timestamp()
    root = make_tree(tmp_path, lists=[("a_InRelease", older), ("b_Release", newer), ("b_Packages", newer + 99999)])
    assert HostInfo(root=root).package_lists_updated() == datetime.datetime.fromtimestamp(newer, datetime.UTC)


def test_package_lists_unknown_without_files(tmp_path):
    assert HostInfo(root=make_tree(tmp_path, unattended=False)).package_lists_updated() is None


# --- the dnspython seam, against a DNS server on loopback ---------------------------------------

ZONE = {
    ("h1.example.test.", "A"): ["10.89.0.11"],
    ("h1.example.test.", "AAAA"): ["fd00::11"],
    ("example.test.", "MX"): ["20 relay2.example.test.", "10 relay.example.test."],
    ("11.0.89.10.in-addr.arpa.", "PTR"): ["h1.example.test."],
    ("relay.example.test.", "A"): ["10.89.100.2"],
    ("relay2.example.test.", "A"): ["10.89.100.3"],
}
PARAMS = {"purpose": "Alerts", "team": "Ops", "contact": "#ops", "relay_host": "example.test:587"}
NAMES = {name for name, _t in ZONE}


@pytest.fixture
def dns_server():
    """Answers from ZONE over UDP on 127.0.0.1; `slow` names are never answered (a timeout)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            question = query.question[0]
            name, rdtype = question.name.to_text(), dns.rdatatype.to_text(question.rdtype)
            if name.startswith("slow."):
                continue
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA
            if (name, rdtype) in ZONE:
                response.answer.append(dns.rrset.from_text_list(name, 60, "IN", rdtype, ZONE[(name, rdtype)]))
            elif name not in NAMES:
                response.set_rcode(dns.rcode.NXDOMAIN)
            sock.sendto(response.to_wire(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


def test_nameservers_are_asked_for_relay_mx_forward_and_reverse(dns_server):
    resolver = al.make_resolver(["127.0.0.1"], dns_server, 2.0)
    assert isinstance(resolver.backend, DnspythonBackend)
    host = FakeHost(routes={"10.89.100.2": "10.89.0.11", "10.89.100.3": "10.89.0.11"})
    params = {**PARAMS, "ipv6": ["fd00::11"], "nameservers": ["127.0.0.1"], "dns_port": dns_server, "timeout": 2.0}
    result = al.allowlist_request(params, host)
    assert host.calls == [("10.89.100.2", 587, None), ("10.89.100.3", 587, None)]  # MX hosts by preference
    assert result["request"]["ipv4"] == ["10.89.0.11"]
    assert [(c["id"], c.get("address")) for c in result["checks"] if c["stage"] == "dns"] == [
        ("fqdn.forward_confirmed", "10.89.0.11"),
        ("rdns.match", "10.89.0.11"),
        ("fqdn.forward_confirmed", "fd00::11"),
        ("rdns.missing", "fd00::11"),
    ]


def test_a_server_that_never_answers_makes_the_checks_unknown(dns_server):
    params = {**PARAMS, "fqdn": "slow.example.test", "relay_host": "10.89.100.2", "ipv4": ["10.89.0.11"],
              "ipv6": ["fd00::11"], "nameservers": ["127.0.0.1"], "dns_port": dns_server, "timeout": 0.3}  # fmt: skip
    result = al.allowlist_request(params, FakeHost())
    unknown = next(c for c in result["checks"] if c["id"] == "fqdn.lookup_failed")
    assert unknown["status"] == "unknown" and result["verdict"] == "unknown"
    assert unknown["message"].startswith("cannot resolve slow.example.test: slow.example.test A: ")
    assert "rdns.mismatch" in [c["id"] for c in result["checks"]]  # the PTR of 10.89.0.11 still answered


def test_default_resolver_is_the_hosts():
    resolver = al.make_resolver([])
    assert isinstance(resolver.backend, SystemBackend)
    addresses, answers = resolver.addresses("localhost")
    assert all(a.answered for a in answers)
    assert addresses and set(addresses) <= {"127.0.0.1", "::1"}
