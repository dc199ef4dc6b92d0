# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the fault, concurrency, secret and exposure suites: managed hosts relaying to the lab relay, mail
bursts counted at the relay, the relay switched off and on, and playbook runs that can overlap.

Hosts come from ``tests.integration.fleet``; these helpers add what the reliability suites need on top.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import yaml

from tests.integration import fleet
from tests.peers import lab, records

SENDER = "noreply@campus.smtp-relay.test"
RECIPIENT = "ops@smtp-relay.test"
# A configuration file Postfix or the role owns: what a refused or failed run must leave byte-identical.
STATE_FILES = "/etc/postfix/main.cf /etc/postfix/sasl_passwd* /etc/postfix/sender_canonical* /etc/mailname"


def relay_vars(**overrides) -> dict:
    """The role's variables for SASL over STARTTLS with certificate checks (the lab relay's port 2587)."""
    relay = lab.info()["relay"]
    return {
        "postfix_relay_host": relay["host"],
        "postfix_relay_port": relay["ports"]["submission"],
        "postfix_relay_ca_file": fleet.CA_ON_HOST,
        "postfix_relay_username": relay["username"],
        "postfix_relay_password": relay["password"],
        "postfix_sender_address": SENDER,
        "postfix_allowed_sender_domains": relay["campus_domains"],
        **overrides,
    }


@contextmanager
def hosts_started(names: dict):
    """Fresh hosts {container: fqdn}, removed afterwards whatever happens (a failed start included)."""
    try:
        for name, fqdn in names.items():
            fleet.start_host(name, fqdn)
        yield list(names)
    finally:
        for name in names:
            fleet.remove_host(name)


def configure(workdir: Path, hosts: list[str], variables: dict, *options) -> tuple[int, dict, str]:
    """smtp.relay.configure on the hosts: (rc, {host: changed task names}, output)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return fleet.play(workdir, hosts, "smtp.relay.configure", variables, *options)


# ---------------------------------------------------------------------------------------------------
# Playbook runs that overlap


def start_play(workdir: Path, hosts: list[str], playbook: str, variables: dict, *options) -> subprocess.Popen:
    """ansible-playbook in the background (JSON callback), its own inventory and variables under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    inventory = workdir / "inventory.yml"
    host_vars = {h: {"ansible_connection": "containers.podman.podman"} for h in hosts}
    inventory.write_text(yaml.safe_dump({"all": {"hosts": host_vars}}))
    extra = workdir / "vars.yml"
    extra.write_text(yaml.safe_dump(variables))
    extra.chmod(0o600)
    command = ["ansible-playbook", "-i", str(inventory), playbook, "-e", f"@{extra}", *options]
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json")
    return subprocess.Popen(command, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def finish_play(process: subprocess.Popen, timeout: float = 900) -> tuple[int, dict, str]:
    """(rc, the JSON callback's document or {}, stdout + stderr) of a run started with ``start_play``."""
    out, err = process.communicate(timeout=timeout)
    return process.returncode, document_of(out), out + err


def recap(document: dict) -> dict:
    """The PLAY RECAP: {host: {ok, changed, unreachable, failures, skipped, rescued, ignored}}."""
    return document.get("stats", {})


def document_of(output: str) -> dict:
    """The JSON callback's document at the start of a ``fleet.play`` output ({} when there is none)."""
    start = output.find("{")
    if start < 0:
        return {}
    try:
        return json.JSONDecoder().raw_decode(output[start:])[0]
    except json.JSONDecodeError:
        return {}


def tasks_of(output: str) -> dict:
    """{task name: (seconds the task took, {host: result})} from a ``fleet.play`` output."""
    tasks = {}
    for one_play in document_of(output).get("plays", []):
        for task in one_play["tasks"]:
            duration = task["task"].get("duration", {})
            start, end = (datetime.fromisoformat(duration[k].rstrip("Z")) for k in ("start", "end"))
            tasks[task["task"]["name"]] = ((end - start).total_seconds(), task["hosts"])
    return tasks


# ---------------------------------------------------------------------------------------------------
# Mail


def _burst_script(subjects: list[str], pause: float, recipient: str) -> str:
    """One sendmail call per subject, each with a Message-ID of its own, ``pause`` seconds apart."""
    return "\n".join(
        f"printf 'Subject: {s}\\nMessage-ID: <{uuid.uuid4().hex}@faults.smtp-relay.test>\\n\\nburst\\n'"
        f" | /usr/sbin/sendmail -t {recipient}" + (f"; sleep {pause}" if pause else "")
        for s in subjects
    )


def send_mails(host: str, subjects: list[str], pause: float = 0.0, recipient: str = RECIPIENT) -> None:
    """Submit one mail per subject with sendmail on the host; returns when all are submitted."""
    fleet.podman("exec", host, "sh", "-ec", _burst_script(subjects, pause, recipient))


def send_mails_in_background(host: str, subjects: list[str], pause: float) -> subprocess.Popen:
    """As ``send_mails``, returning at once; wait on the process to know the burst was submitted."""
    env = dict(os.environ, CONTAINERS_CONF=str(fleet.ROOT / "tests" / "containers.conf"))
    return subprocess.Popen(
        ["podman", "exec", host, "sh", "-ec", _burst_script(subjects, pause, RECIPIENT)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def burst_subjects(tag: str, count: int) -> list[str]:
    """Subjects no other run or test uses: counting them at the relay counts this burst alone."""
    run = uuid.uuid4().hex[:8]
    return [f"{tag} {run} #{i:03d}" for i in range(count)]


def arrivals(subjects: list[str]) -> collections.Counter:
    """How many times the relay recorded each of ``subjects`` (subjects of other mail are ignored)."""
    wanted = set(subjects)
    # The records of every earlier run stay: parse the headers only of those that may be ours.
    prefixes = {s.rpartition(" #")[0] for s in subjects}
    seen = collections.Counter()
    for record in records.messages(lab.info()["relay"]["records_dir"]):
        if not any(p in record["data"] for p in prefixes):
            continue
        subject = records.headers(record)["Subject"]
        if subject in wanted:
            seen[subject] += 1
    return seen


def wait_for_all(host: str, subjects: list[str], timeout: float = 120, settle: float = 5) -> collections.Counter:
    """Flush the host's queue until every subject arrived or ``timeout`` passed; then wait ``settle`` seconds more,
    so that a late duplicate is counted too. Returns the counts."""
    deadline = time.monotonic() + timeout
    while True:
        seen = arrivals(subjects)
        if len(seen) == len(subjects) or time.monotonic() > deadline:
            break
        # Deferred mail waits minutes for its next try; a flush also wakes up the "dead" relay destination.
        fleet.podman("exec", host, "postqueue", "-f", check=False)
        time.sleep(2)
    time.sleep(settle)
    return arrivals(subjects)


def queue_size(host: str) -> int:
    """Messages in the host's queue (postqueue -j prints one JSON object per message)."""
    return sum(1 for line in fleet.on_host(host, "postqueue", "-j").splitlines() if line.strip())


# ---------------------------------------------------------------------------------------------------
# The relay, switched off and on


def relay_answers(port: int | None = None) -> bool:
    relay = lab.info()["relay"]
    try:
        with socket.create_connection((relay["ipv4"], port or relay["ports"]["submission"]), timeout=2):
            return True
    except OSError:
        return False


def stop_relay(timeout: float = 30) -> None:
    """Stop the lab relay and wait until it no longer accepts connections (pkill returns before it exits)."""
    lab.relay_stop()
    deadline = time.monotonic() + timeout
    while relay_answers():
        if time.monotonic() > deadline:
            raise AssertionError(f"the lab relay still answers {timeout:.0f}s after it was told to stop")
        time.sleep(0.2)


def start_relay() -> None:
    lab.relay_start()
    assert relay_answers(), "the lab relay did not come back"


@contextmanager
def relay_down():
    """The relay stopped for the block, and started again after it whatever happens."""
    stop_relay()
    try:
        yield
    finally:
        if not relay_answers():
            start_relay()


# ---------------------------------------------------------------------------------------------------
# What is on the host


def config_state(host: str) -> str:
    """sha256 of every file of the relay configuration (sources and indexed maps), one line each."""
    return fleet.on_host(host, "sh", "-c", f"sha256sum {STATE_FILES} 2>&1 | sort -k2")


def postconf_value(host: str, name: str) -> str:
    return fleet.on_host(host, "postconf", "-h", name).strip()
