# SPDX-License-Identifier: GPL-3.0-or-later
"""The execution environment that `make ee` builds, used as AWX and Automation Platform use it.

A job of AWX or Automation Platform is ansible-runner with container isolation: the controller lays out a private data
directory, and runner starts ansible-playbook in the job template's EE with podman, as root in the container (AWX's
``container_options: ['--user=root']``, followed by its DEFAULT_CONTAINER_RUN_OPTIONS: here, the lab network). The test
lays out what AWX would and calls runner's Python API with those settings:

- project/: configure.yml and verify.yml, each importing the collection's playbook (a job template runs a playbook file
  of its project);
- inventory/hosts: the inventory as AWX hands it over, a script printing hosts and variables as JSON; the inventory's
  group variables describe the relay (SASL over verified STARTTLS);
- env/ssh_key: the machine credential's key for root, which runner loads into an ssh-agent inside the EE;
- env/extravars: the relay password, as a custom credential type injects it.

The managed host is a systemd container of the lab (tests/integration/fleet.py) with sshd started: the EE has no podman
and reaches it over SSH, as an EE reaches servers. After the configure job, a mail sent on the host must arrive at the
relay, authenticated, over TLS.

Needs the lab up and the image built: `make integration` builds the image first (it depends on `make ee`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import time
import typing
from pathlib import Path

import pytest
import yaml

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "localhost/smtp-relay-ee:latest"
HOST, FQDN = "smtprelay-ee-h1", "ee1.smtp-relay.test"
PREFIX = "smtprelay-ee-"  # the containers the test starts; runner names a job's container ansible_runner_<ident>
IN_IMAGE = "/usr/share/ansible/collections/ansible_collections"
CHECK = "The host matches the inventory and reaches the relay"  # the verdict task of smtp.relay.verify
SENDER = "noreply@campus.smtp-relay.test"
# What AWX gives runner for a job in an EE on a podman execution node (awx/main/tasks/jobs.py,
# build_execution_environment_params); the network stands for AWX's DEFAULT_CONTAINER_RUN_OPTIONS.
AWX_PARAMS = {
    "process_isolation": True,
    "process_isolation_executable": "podman",
    "container_image": IMAGE,
    "container_options": ["--user=root", f"--network={lab.NETWORK}"],
}


class Managed(typing.NamedTuple):
    address: str  # on the lab network
    key: Path  # root's SSH key (the machine credential)
    group_vars: dict  # the inventory's variables for the relay
    password: str  # the relay password (the custom credential)
    records_dir: str


@pytest.fixture(scope="module", autouse=True)
def podman_settings():
    """Runner starts podman with this process's environment: the project's podman settings, as fleet.podman uses."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONTAINERS_CONF", str(ROOT / "tests" / "containers.conf"))
        yield


@pytest.fixture(scope="module")
def image() -> str:
    if fleet.podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.fail(f"{IMAGE} is missing: run `make ee`")
    return IMAGE


@pytest.fixture(scope="module")
def runner():
    try:
        import ansible_runner
    except ImportError:
        pytest.fail("ansible-runner is not in the venv: run `make ee` (it installs ee/requirements.txt)")
    return ansible_runner


def in_image(*command: str) -> str:
    """A command in the EE, through its entrypoint, in a container removed afterwards."""
    name = f"{PREFIX}probe"
    fleet.podman("rm", "-f", "-t", "0", name, check=False)
    try:
        return fleet.podman("run", "--rm", "--name", name, IMAGE, *command).stdout
    finally:
        fleet.podman("rm", "-f", "-t", "0", name, check=False)


PROBE = """
import importlib.metadata, json, pathlib
root = pathlib.Path("/usr/share/ansible/collections/ansible_collections")
print(json.dumps({
    "packages": {p: importlib.metadata.version(p) for p in ("ansible-core", "ansible-runner", "dnspython", "pyspf")},
    "collections": sorted(f"{p.parent.name}.{p.name}" for p in root.glob("*/*")),
    "relay_files": json.loads((root / "smtp/relay/FILES.json").read_text())["files"],
}))
"""


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def test_the_image_holds_this_work_tree_and_what_the_tests_run_with(image):
    found = json.loads(in_image("python3", "-c", PROBE))
    assert found["collections"] == ["smtp.relay"]
    # ee/build.sh holds the image's Python packages to the venv's versions.
    assert found["packages"] == {name: importlib.metadata.version(name) for name in found["packages"]}
    files = [f for f in found["relay_files"] if f["ftype"] == "file"]
    assert any(f["name"] == "roles/postfix/tasks/main.yml" for f in files)
    stale = [f["name"] for f in files if digest(ROOT / f["name"]) != f["chksum_sha256"]]
    assert not stale, f"the image holds another version of these files ({stale[:5]}...): run `make ee`"


# Jobs, as AWX runs them.


def wait_for_boot(host: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while fleet.podman("exec", host, "systemctl", "is-system-running", check=False).stdout.strip() not in {
        "running",
        "degraded",
    }:
        assert time.monotonic() < deadline, f"{host}: systemd did not finish starting"
        time.sleep(0.5)


def lab_address(host: str) -> str:
    form = '{{(index .NetworkSettings.Networks "' + lab.NETWORK + '").IPAddress}}'
    return fleet.podman("inspect", "-f", form, host).stdout.strip()


@pytest.fixture(scope="module")
def managed(image, tmp_path_factory) -> typing.Iterator[Managed]:
    """A fresh lab host, sshd started, root's key authorized; the relay as the inventory describes it."""
    relay = lab.info()["relay"]
    key = tmp_path_factory.mktemp("credential") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "awx-machine-credential", "-f", str(key)],
                   check=True)  # fmt: skip
    fleet.start_host(HOST, FQDN)
    try:
        wait_for_boot(HOST)
        public = key.with_suffix(".pub").read_text().strip()
        fleet.on_host(HOST, "sh", "-c", f"install -d -m 700 /root/.ssh && echo '{public}' > /root/.ssh/authorized_keys"
                      " && systemctl start ssh")  # fmt: skip
        group_vars = {
            "postfix_relay_host": relay["host"],
            "postfix_relay_port": relay["ports"]["submission"],
            "postfix_relay_ca_file": fleet.CA_ON_HOST,
            "postfix_relay_username": relay["username"],
            "postfix_sender_address": SENDER,
            "postfix_allowed_sender_domains": relay["campus_domains"],
        }
        yield Managed(lab_address(HOST), key, group_vars, relay["password"], relay["records_dir"])
    finally:
        fleet.remove_host(HOST)


def private_data_dir(path: Path, managed: Managed) -> Path:
    """What AWX writes for a job: the project, the inventory script, the credentials."""
    for sub in ("project", "inventory", "env"):
        (path / sub).mkdir(parents=True)
    for name in ("configure", "verify"):
        (path / "project" / f"{name}.yml").write_text(f"---\n- ansible.builtin.import_playbook: smtp.relay.{name}\n")
    inventory = {
        "all": {"children": ["relay_clients"]},
        "relay_clients": {"hosts": [HOST], "vars": managed.group_vars},
        "_meta": {"hostvars": {HOST: {"ansible_host": managed.address, "ansible_user": "root"}}},
    }
    script = path / "inventory" / "hosts"
    script.write_text(f"#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint({json.dumps(inventory)!r})\n")
    script.chmod(0o700)
    (path / "env" / "ssh_key").write_text(managed.key.read_text())
    (path / "env" / "extravars").write_text(yaml.safe_dump({"postfix_relay_password": managed.password}))
    for secret in ("ssh_key", "extravars"):
        (path / "env" / secret).chmod(0o600)
    return path


class Job(typing.NamedTuple):
    status: str  # successful, failed, timeout...
    stats: dict
    events: list[dict]
    command: list[str]  # what runner started
    output: str


def run_job(runner, workdir: Path, managed: Managed, playbook: str, ident: str) -> Job:
    """One job in the EE, in a fresh private data directory, as AWX runs it."""
    pdd = private_data_dir(workdir, managed)
    try:
        done = runner.run(private_data_dir=str(pdd), playbook=playbook, ident=ident, quiet=True, timeout=600,
                          **AWX_PARAMS)  # fmt: skip
    finally:
        fleet.podman("rm", "-f", "-t", "0", f"ansible_runner_{ident}", check=False)
    command = json.loads((pdd / "artifacts" / ident / "command").read_text())["command"]
    return Job(done.status, done.stats or {}, list(done.events), command, done.stdout.read())


def task_results(job: Job, task: str) -> dict[str, tuple[str, dict]]:
    """{host: (event, result)} for one task."""
    return {
        e["event_data"]["host"]: (e["event"], e["event_data"].get("res", {}))
        for e in job.events
        if e["event"].startswith("runner_on_") and e.get("event_data", {}).get("task") == task
    }


@pytest.fixture(scope="module")
def configure_job(runner, managed, tmp_path_factory) -> Job:
    return run_job(runner, tmp_path_factory.mktemp("configure"), managed, "configure.yml", f"{PREFIX}configure")


def test_configure_job_converges_the_host_over_ssh_from_the_ee(configure_job):
    job = configure_job
    assert job.status == "successful", job.output
    assert job.command[:2] == ["podman", "run"] and IMAGE in job.command
    assert job.command[job.command.index(IMAGE) + 1] == "ssh-agent"  # the machine credential, in the EE's ssh-agent
    assert job.stats["changed"].get(HOST), job.stats
    assert not job.stats.get("failures") and not job.stats.get("dark"), job.stats
    # The role ran from the EE's collections, not from this work tree.
    paths = {e["event_data"].get("task_path", "") for e in job.events if e["event"] == "playbook_on_task_start"}
    assert paths and all(p.startswith(f"{IN_IMAGE}/smtp/relay/") for p in paths if p), paths


def test_mail_from_the_configured_host_arrives_authenticated_over_tls(managed, configure_job):
    assert configure_job.status == "successful"
    subject = f"ee job {time.time()}"
    mail = f"printf 'Subject: {subject}\\n\\nsent after a job in the EE\\n' | sendmail -t ops@smtp-relay.test"
    fleet.on_host(HOST, "sh", "-c", mail)
    # As in tests/integration/role: on a busy lab the relay's name or greeting can take its time (seen: 10 to 60 s).
    try:
        record = records.wait_for(managed.records_dir, lambda r: records.headers(r)["Subject"] == subject, 120)
    except AssertionError as missing:
        queue = fleet.on_host(HOST, "sh", "-c", "postqueue -p; journalctl -q -n 30 --no-pager 2>&1 | grep -i postfix")
        raise AssertionError(f"{missing}\non the host:\n{queue}") from None
    assert record["listener"] == "submission"
    assert record["auth_user"] == managed.group_vars["postfix_relay_username"]
    assert record["tls_version"]
    assert record["mail_from"] == SENDER


def test_verify_job_passes_the_configured_host(runner, managed, configure_job, tmp_path):
    assert configure_job.status == "successful"
    job = run_job(runner, tmp_path, managed, "verify.yml", f"{PREFIX}verify")
    assert job.status == "successful", job.output
    assert {host: event for host, (event, _result) in task_results(job, CHECK).items()} == {HOST: "runner_on_ok"}
    probe = task_results(job, "Compare the host's settings with the inventory and probe the relay from the host")
    assert probe[HOST][0] == "runner_on_ok"
    assert probe[HOST][1]["valid"] is True, probe[HOST][1].get("checks")


def test_verify_job_fails_on_a_drifted_host(runner, managed, configure_job, tmp_path):
    assert configure_job.status == "successful"
    relayhost = f"[{managed.group_vars['postfix_relay_host']}]:{managed.group_vars['postfix_relay_port']}"
    fleet.on_host(HOST, "postconf", "-e", f"relayhost = [{managed.group_vars['postfix_relay_host']}]:25")
    try:
        job = run_job(runner, tmp_path, managed, "verify.yml", f"{PREFIX}verify-drift")
    finally:
        fleet.on_host(HOST, "postconf", "-e", f"relayhost = {relayhost}")
    assert job.status == "failed", job.output
    event, result = task_results(job, CHECK)[HOST]
    assert event == "runner_on_failed"
    assert f"relayhost: expected {relayhost}, found" in result["msg"]
