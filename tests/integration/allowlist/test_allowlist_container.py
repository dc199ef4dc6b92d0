# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.allowlist_request on a real container with known addresses (IPv4 and IPv6).

Starts its own network and container (prefix hb-) and removes them. The relay address 10.89.210.2 /
fd89:210::2 is only routed to, never contacted: egress detection sends no packet. Names come from the
container's /etc/hosts (the host's own resolver); the DNS-server view is covered by tests/integration/allowlist_fleet.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import uuid

import pytest

pytestmark = pytest.mark.peers

ROOT = pathlib.Path(__file__).resolve().parents[3]
ENV = {
    **os.environ,
    "CONTAINERS_CONF": str(ROOT / "tests" / "containers.conf"),
    # containers.podman comes with the ansible package (found on sys.path), smtp.relay from the link.
    "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".cache" / "collections"),
    "ANSIBLE_NOCOLOR": "1",
    "ANSIBLE_HOST_KEY_CHECKING": "0",
}
ANSIBLE = str(ROOT / ".venv" / "bin" / "ansible")
SUFFIX = uuid.uuid4().hex[:6]
NETWORK = f"hb-allowlist-{SUFFIX}"
HOST = f"hb-host1-{SUFFIX}"
IPV4, IPV6 = "10.89.210.11", "fd89:210::11"
BASE = {"purpose": "Order mails", "team": "Shop", "contact": "#shop", "relay_host": "[relay.example.test]:587"}
# A postconf stand-in printing the settings the test chooses (real Postfix: tests/integration/postfix_modules).
POSTCONF_STUB = "#!/bin/sh\ncat /etc/hb-postconf\n"


def podman(*args, check=True):
    return subprocess.run(["podman", *args], env=ENV, capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def host():
    if (
        shutil.which("podman") is None
        or podman("image", "exists", "localhost/smtprelay-debian:bookworm", check=False).returncode
    ):
        pytest.skip("podman or the smtprelay-debian image is missing (tests/images/build.sh)")
    podman("network", "create", "--subnet", "10.89.210.0/24", "--ipv6", "--subnet", "fd89:210::/64", NETWORK)
    try:
        podman(
            "run", "-d", "--name", HOST, "--hostname", "h1.example.test", "--network", NETWORK,
            "--ip", IPV4, "--ip6", IPV6, "--cap-add", "NET_ADMIN",
            "--add-host", "relay.example.test:10.89.210.2", "--add-host", "relay.example.test:fd89:210::2",
            "--add-host", "nat.example.test:11.22.33.44",
            "localhost/smtprelay-debian:bookworm",
        )  # fmt: skip
        # A second address for smtp_bind_address, as a multi-homed server has.
        podman("exec", HOST, "ip", "addr", "add", "10.89.210.12/24", "dev", "eth0")
        yield HOST
    finally:
        podman("rm", "-f", "-t", "0", HOST, check=False)
        podman("network", "rm", "-f", NETWORK, check=False)


def run(args, check_mode=False, diff=False):
    argv = [ANSIBLE, "all", "-i", f"{HOST},", "-c", "containers.podman.podman"]
    argv += ["-e", "ansible_python_interpreter=/usr/bin/python3", "-m", "smtp.relay.allowlist_request"]
    argv += ["-a", json.dumps({**BASE, **args})]
    argv += ["--check"] * check_mode + ["--diff"] * diff
    proc = subprocess.run(argv, env=ENV, capture_output=True, text=True, check=False)
    head, sep, body = proc.stdout.partition(" => ")
    assert sep, proc.stdout + proc.stderr
    result = json.loads(body[: body.rindex("}") + 1])
    result["failed"] = "FAILED" in head
    result["stdout"] = proc.stdout  # the diff is printed, not returned, by ad-hoc runs
    return result


def set_postconf(host, text):
    if text is None:
        podman("exec", host, "rm", "-f", "/usr/local/sbin/postconf", "/etc/hb-postconf")
        return
    podman("exec", host, "sh", "-c", f"printf '%s' '{POSTCONF_STUB}' > /usr/local/sbin/postconf")
    podman("exec", host, "chmod", "755", "/usr/local/sbin/postconf")
    podman("exec", host, "sh", "-c", f"printf '%s' '{text}' > /etc/hb-postconf")


def ids(result, status):
    return [c["id"] for c in result["checks"] if c["status"] == status]


def test_defaults_from_the_host_and_the_kernels_route(host):
    result = run({})
    assert not result["failed"], result["msg"]
    assert result["request"]["fqdn"] == "h1.example.test"
    assert result["request"]["ipv4"] == [IPV4]
    assert result["request"]["ipv6"] == [IPV6]
    assert ids(result, "fail") == []
    assert sorted(ids(result, "pass")).count("fqdn.forward_confirmed") == 2


def test_postfix_bind_address_and_inet_protocols_are_honoured(host):
    set_postconf(
        host, "relayhost = [relay.example.test]:587\nsmtp_bind_address = 10.89.210.12\ninet_protocols = ipv4\n"
    )
    try:
        result = run({"relay_host": None, "report_only": True})
        assert result["request"]["relay"] == "[relay.example.test]:587"
        assert result["request"]["ipv4"] == ["10.89.210.12"]
        assert result["request"]["ipv6"] == []
        # h1's name says .11: the bound address is not forward-confirmed.
        assert "fqdn.forward_mismatch" in ids(result, "fail")
        set_postconf(host, "smtp_bind_address = 10.89.210.99\n")
        result = run({})
        assert result["failed"] and "egress.bind_unavailable" in result["msg"]
    finally:
        set_postconf(host, None)


def test_nat_egress_towards_a_public_relay(host):
    detected = run({"relay_public": True})
    assert detected["failed"]
    assert "address.not_global" in ids(detected, "fail")
    given = run({"fqdn": "nat.example.test", "egress": ["11.22.33.44"], "relay_public": True})
    assert not given["failed"], given["msg"]
    assert given["request"]["ipv4"] == ["11.22.33.44"] and given["request"]["ipv6"] == []


def test_unresolvable_fqdn_fails(host):
    result = run({"fqdn": "ghost.example.test"})
    assert result["failed"] and "fqdn.unresolved" in result["msg"]


@pytest.mark.parametrize("fmt", ["mail", "markdown", "json", "yaml", "csv"])
def test_render_to_dest_stable_and_check_mode_writes_nothing(host, fmt):
    dest = f"/root/request.{fmt}"
    podman("exec", host, "rm", "-f", dest)
    preview = run({"format": fmt, "dest": dest}, check_mode=True, diff=True)
    assert preview["changed"]
    assert f"+++ after: {dest}" in preview["stdout"]
    assert podman("exec", host, "test", "-e", dest, check=False).returncode == 1
    first = run({"format": fmt, "dest": dest})
    assert first["changed"]
    assert podman("exec", host, "cat", dest).stdout == first["rendered"] == preview["rendered"]
    second = run({"format": fmt, "dest": dest})
    assert second["changed"] is False


def test_bad_input_names_the_field(host):
    result = run({"contact": "someone"})
    assert result["failed"] and result["msg"].startswith("contact ")
