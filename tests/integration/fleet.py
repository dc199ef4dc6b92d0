# SPDX-License-Identifier: GPL-3.0-or-later
"""Managed hosts for integration tests: systemd containers on the lab network, and playbook runs on them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from tests.peers import lab

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/smtprelay-debian:bookworm"
# The managed-host image of each Debian release the role is tested on (tests/images/build.sh builds them all).
RELEASE_IMAGES = {
    "bullseye": "localhost/smtprelay-debian:bullseye",
    "bookworm": IMAGE,
    "trixie": "localhost/smtprelay-debian:trixie",
}
CA_ON_HOST = "/usr/local/share/smtp-relay-test-ca.pem"


def podman(*args, check=True):
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / "tests" / "containers.conf"))
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=True, env=env)


def start_host(name: str, fqdn: str, image: str = IMAGE, ips: tuple[str, ...] = ()) -> None:
    """A fresh Debian host with systemd, trusting the lab's test CA; ``image``: another release's image.

    ``ips``: fixed addresses (an IPv4 and/or an IPv6 of the lab network), for peers that admit the host by IP.
    """
    podman("rm", "-f", "-t", "0", name, check=False)
    addresses = [arg for ip in ips for arg in ("--ip6" if ":" in ip else "--ip", ip)]
    podman(
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        fqdn,
        "--network",
        lab.NETWORK,
        *addresses,
        "--systemd=always",
        image,
        "/sbin/init",
    )
    podman("cp", lab.info()["relay"]["ca_file"], f"{name}:{CA_ON_HOST}")


def remove_host(name: str) -> None:
    podman("rm", "-f", "-t", "0", name, check=False)


def on_host(name: str, *command) -> str:
    return podman("exec", name, *command).stdout


def host_state(name: str) -> str:
    """What a refused run must leave alone: Postfix's files, the mail name, the package and the service."""
    script = (
        "cd /etc/postfix 2>/dev/null && find . -type f | sort | xargs -r sha256sum; "
        "sha256sum /etc/mailname 2>/dev/null; dpkg-query -W -f='${Status}\\n' postfix 2>&1; "
        "systemctl is-active postfix 2>&1; systemctl is-enabled postfix 2>&1; true"
    )
    return podman("exec", name, "sh", "-c", script).stdout


def ini_inventory(workdir: Path, hosts: list[str], variables: dict) -> Path:
    """An INI inventory: every variable reaches Ansible as a string, as from a real INI file or -e."""
    inventory = workdir / "inventory.ini"
    words = " ".join(f"{k}={v}" for k, v in variables.items())
    inventory.write_text("".join(f"{h} ansible_connection=containers.podman.podman {words}\n" for h in hosts))
    inventory.chmod(0o600)
    return inventory


def play(workdir: Path, hosts: list[str], playbook: str, variables: dict, *options, check_mode=False, inventory=None):
    """Run a playbook on the hosts; return (rc, {host: [changed task names]}, output).

    The output is the raw output followed by the failure messages alone, one a line, after "FAILURES:".
    ``inventory`` replaces the generated YAML inventory (then ``variables`` may be empty).
    """
    if inventory is None:
        inventory = workdir / "inventory.yml"
        host_vars = {h: {"ansible_connection": "containers.podman.podman"} for h in hosts}
        inventory.write_text(yaml.safe_dump({"all": {"hosts": host_vars}}))
    extra = workdir / "vars.yml"
    extra.write_text(yaml.safe_dump(variables))
    extra.chmod(0o600)
    command = ["ansible-playbook", "-i", str(inventory), playbook, "-e", f"@{extra}", *options]
    if check_mode:
        command.append("--check")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    done = subprocess.run(command, text=True, capture_output=True, env=env, check=False)
    changed, failures = {h: [] for h in hosts}, []
    if done.stdout.lstrip().startswith("{"):
        for one_play in json.loads(done.stdout)["plays"]:
            for task in one_play["tasks"]:
                for host, result in task["hosts"].items():
                    if result.get("changed") and host in changed:
                        changed[host].append(task["task"]["name"])
                    if result.get("failed"):
                        failures.extend([str(result.get("msg", "")), *map(str, result.get("argument_errors", []))])
    return done.returncode, changed, done.stdout + done.stderr + "\nFAILURES:\n" + "\n".join(failures)


def failures(output: str) -> str:
    return output.rpartition("\nFAILURES:\n")[2]


SENDER = "noreply@campus.smtp-relay.test"


def campus_vars(**overrides) -> dict:
    """The role's variables for the lab's campus relay: port 587, STARTTLS verified, no AUTH, approved domains."""
    relay = lab.info()["relay"]
    return {
        "postfix_relay_host": relay["host"],
        "postfix_relay_port": relay["ports"]["campus"],
        "postfix_relay_ca_file": CA_ON_HOST,
        "postfix_sender_address": SENDER,
        "postfix_allowed_sender_domains": relay["campus_domains"],
        **overrides,
    }


def sasl_vars(**overrides) -> dict:
    """The same with SASL over verified STARTTLS (the lab relay's submission port, 2587)."""
    relay = lab.info()["relay"]
    sasl = {
        "postfix_relay_port": relay["ports"]["submission"],
        "postfix_relay_username": relay["username"],
        "postfix_relay_password": relay["password"],
    }
    return campus_vars(**{**sasl, **overrides})
