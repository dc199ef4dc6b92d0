# SPDX-License-Identifier: GPL-3.0-or-later
"""The CI recipes users copy (ci/github-actions.yml, ci/gitlab-ci.yml): the commands they run, run here.

Each recipe has two jobs, the inventory check (`-e probe=false`, no host contacted) and the live verify. The test
takes from the files themselves each job's environment (the JUnit settings, INVENTORY) and its verify command, runs
that command as the CI shell would, in a directory laid out like the checkout of a user's repository (`inventory/`),
and reads the JUnit report it leaves where the recipe publishes it from. What differs from a CI runner is this list,
and nothing else (``SKIPPED_STEPS``, ``runner_env``):

- the install step: ansible-core is this venv's, the collection is the work tree (.cache/collections, `make link`);
- the SSH step: the live test reaches its lab host with the podman connection (in its inventory), not SSH.

Both recipes must run the same commands in the same environment, so they cannot drift apart.

The inventory tests need no lab; they are marked ``peers`` all the same, so that `make test` runs them in its
integration pass (`pytest -m peers tests/unit tests/integration`), as tests/integration/package does. The live test
configures one host on the lab (tests/integration/fleet.py) and needs the peers up.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import typing
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from tests.integration import fleet

pytestmark = pytest.mark.peers

ROOT = Path(__file__).resolve().parents[3]
GITHUB = yaml.safe_load((ROOT / "ci" / "github-actions.yml").read_text())
GITLAB = yaml.safe_load((ROOT / "ci" / "gitlab-ci.yml").read_text())
# Our name for each job: (GitHub job, GitLab job).
JOBS = {"inventory": ("inventory", "relay-variables"), "live": ("live", "relay-hosts")}
# The GitHub steps (by id) the test does not run; every other `run:` step of a job is its verify step, run verbatim.
SKIPPED_STEPS = {"inventory": {"install"}, "live": {"install", "ssh"}}
LIVE_HOST, LIVE_FQDN = "smtprelay-ci-h1", "h1.smtp-relay.test"
CHECK = "The host matches the inventory and reaches the relay"  # the verdict task of smtp.relay.verify


class Job(typing.NamedTuple):
    env: dict[str, str]  # what the shell of the verify step sees from the recipe
    setup: list[str]  # commands before the verify step (install, SSH)
    verify: list[str]  # the verify step


class Case(typing.NamedTuple):
    host: str
    task: str
    outcome: str  # passed, failed (a <failure> or an <error>), skipped
    message: str


def lines(script: str | list[str]) -> list[str]:
    if isinstance(script, str):
        script = script.splitlines()
    return [line.strip() for line in script if line.strip() and not line.strip().startswith("#")]


def github_job(name: str) -> Job:
    job = GITHUB["jobs"][name]
    runs = {step["id"]: step for step in job["steps"] if "run" in step}
    assert list(runs)[-1] == "verify", "the verify step comes last among the run steps"
    assert set(runs) - {"verify"} == SKIPPED_STEPS[name], "a run step the test would silently skip"
    assert "env" not in runs["verify"]
    setup = [line for step in list(runs.values())[:-1] for line in lines(step["run"])]
    return Job({**GITHUB["env"], **job.get("env", {})}, setup, lines(runs["verify"]["run"]))


def gitlab_job(name: str) -> Job:
    job = GITLAB[name]
    return Job({**GITLAB["variables"], **job.get("variables", {})}, lines(job["before_script"]), lines(job["script"]))


def install_lines(job: Job) -> list[str]:
    (install,) = (step for step in GITHUB["jobs"]["inventory"]["steps"] if step.get("id") == "install")
    return job.setup[: len(lines(install["run"]))]


def runner_env(workdir: Path) -> dict[str, str]:
    """What the skipped install step leaves a runner with; none of the caller's Ansible settings, no ansible.cfg."""
    config = workdir / "empty-ansible.cfg"
    config.write_text("[defaults]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    return {
        **env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', os.defpath)}",
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".cache" / "collections"),
        "ANSIBLE_CONFIG": str(config),
        "CONTAINERS_CONF": str(ROOT / "tests" / "containers.conf"),  # the podman connection of the live test
    }


def run_verify(name: str, checkout: Path) -> tuple[subprocess.CompletedProcess[str], list[Case]]:
    """The job's verify step, as the runner's bash runs it, in CHECKOUT; its exit and its JUnit test cases."""
    job = github_job(name)
    machine = runner_env(checkout)
    assert not set(machine) & set(job.env), "the test would override the recipe's own settings"
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "\n".join(job.verify)],
        cwd=checkout,
        env={**machine, **job.env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    reports = list((checkout / job.env["JUNIT_OUTPUT_DIR"]).glob("*.xml"))
    assert len(reports) == 1, (reports, proc.stdout, proc.stderr)
    assert reports[0].name.startswith("verify-")
    return proc, junit_cases(reports[0])


def junit_cases(report: Path) -> list[Case]:
    cases = []
    for case in ET.parse(report).getroot().iter("testcase"):
        host, _play, task = re.fullmatch(r"\[([^\]]+)\] ([^:]+): (.*)", case.get("name"), re.DOTALL).groups()
        bad = [e for e in case if e.tag in {"failure", "error"}]
        outcome = "failed" if bad else "skipped" if case.find("skipped") is not None else "passed"
        cases.append(Case(host, task, outcome, " ".join(e.get("message", "") for e in bad)))
    return cases


def write_inventory(checkout: Path, hosts: dict, group_vars: dict, host_vars: dict | None = None) -> None:
    """An inventory directory as a user's repository holds it, where the recipe's INVENTORY points."""
    inventory = checkout / github_job("inventory").env["INVENTORY"]
    (inventory / "group_vars").mkdir(parents=True)
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    (inventory / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    for host, variables in (host_vars or {}).items():
        (inventory / "host_vars").mkdir(exist_ok=True)
        (inventory / "host_vars" / f"{host}.yml").write_text(yaml.safe_dump(variables))


# The recipes themselves: the same commands on both platforms, the report published whatever the outcome.


@pytest.mark.parametrize("name", JOBS)
def test_github_and_gitlab_run_the_same_commands(name):
    github, gitlab = github_job(name), gitlab_job(JOBS[name][1])
    assert github.env == gitlab.env
    assert github.verify == gitlab.verify
    assert install_lines(github) == install_lines(gitlab)
    assert not any("${{" in line for line in github.verify)


def test_the_live_job_is_the_inventory_job_with_the_probe():
    inventory, live = github_job("inventory"), github_job("live")
    offline = [line.replace("smtp.relay.verify", "smtp.relay.verify -e probe=false") for line in live.verify]
    assert inventory.verify == offline
    assert install_lines(inventory) == inventory.setup  # no SSH for the inventory job
    assert set(live.env) - set(inventory.env) <= {"ANSIBLE_PRIVATE_KEY_FILE"}


def test_what_the_test_replaces_is_the_install_and_ssh_steps_only(tmp_path):
    for name in JOBS:
        github_job(name)  # every run step but the verify step is in SKIPPED_STEPS
    assert set().union(*SKIPPED_STEPS.values()) == {"install", "ssh"}
    # The recipe's INVENTORY is relative: the test writes its inventory there instead of overriding the variable.
    assert not Path(github_job("inventory").env["INVENTORY"]).is_absolute()
    # Ansible sees only what the install step leaves (the caller's ANSIBLE_* settings are dropped), and the rest of
    # the environment is the caller's but for PATH (this venv first) and the podman configuration.
    runner = runner_env(tmp_path)
    assert {k for k in runner if k.startswith("ANSIBLE_")} == {"ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_CONFIG"}
    others = runner.keys() | os.environ.keys()
    others = {k for k in others if not k.startswith("ANSIBLE_") and runner.get(k) != os.environ.get(k)}
    assert others <= {"PATH", "CONTAINERS_CONF"}


def test_install_brings_ansible_core_and_the_declared_dependencies():
    (pip, galaxy) = install_lines(github_job("inventory"))
    minimum = yaml.safe_load((ROOT / "meta" / "runtime.yml").read_text())["requires_ansible"].removeprefix(">=")
    assert f'"ansible-core>={minimum.removesuffix(".0")},' in pip
    assert galaxy.startswith('ansible-galaxy collection install "smtp.relay:')
    assert "--no-deps" not in galaxy  # galaxy.yml's dependencies come along


@pytest.mark.parametrize("name", JOBS)
def test_the_report_is_published_even_when_the_job_fails(name):
    report_dir = github_job(name).env["JUNIT_OUTPUT_DIR"]
    steps = GITHUB["jobs"][JOBS[name][0]]["steps"]
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    reporter = [s for s in steps if s.get("uses", "").startswith("mikepenz/action-junit-report@")]
    assert [(s["if"], s["with"]["path"]) for s in upload] == [("always()", f"{report_dir}/")]
    assert [(s["if"], s["with"]["report_paths"]) for s in reporter] == [("always()", f"{report_dir}/*.xml")]
    artifacts = GITLAB[JOBS[name][1]]["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == f"{report_dir}/*.xml"
    assert artifacts["paths"] == [f"{report_dir}/"]


# The inventory job: no lab, no host contacted (the hosts' addresses are in TEST-NET-1, which nothing answers).

GOOD = {
    "postfix_relay_host": "smtp.campus.example.edu",
    "postfix_relay_port": 587,
    "postfix_sender_address": "noreply@dept.example.edu",
    "postfix_allowed_sender_domains": ["dept.example.edu"],
}
UNREACHABLE = {
    "web1.example.org": {"ansible_host": "192.0.2.10", "ansible_user": "verify"},
    "web2.example.org": {"ansible_host": "192.0.2.11", "ansible_user": "verify"},
}


def test_inventory_job_passes_a_good_inventory(tmp_path):
    write_inventory(tmp_path, UNREACHABLE, GOOD)
    proc, cases = run_verify("inventory", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [c for c in cases if c.outcome == "failed"] == []
    verdicts = {c.host: c.outcome for c in cases if c.task == CHECK}
    assert verdicts == {"web1.example.org": "passed", "web2.example.org": "passed"}
    assert not any("{{" in c.task for c in cases), "task arguments in the test case names"
    assert "UNREACHABLE" not in proc.stdout


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"postfix_relay_port": 0}, "postfix_relay_port"),
        ({"postfix_relay_host": "smtp.campus.example.edu\nrelayhost = [evil.example]:25"}, "postfix_relay_host"),
        ({"postfix_relay_port": 465, "postfix_relay_tls": "starttls"}, "postfix_relay_tls"),
    ],
    ids=["port-0", "line-break", "port-vs-tls"],
)
def test_inventory_job_fails_a_bad_variable_with_a_failing_test_case(tmp_path, bad, named):
    write_inventory(tmp_path, UNREACHABLE, GOOD, {"web2.example.org": bad})
    proc, cases = run_verify("inventory", tmp_path)
    assert proc.returncode != 0
    failed = [c for c in cases if c.outcome == "failed"]
    assert [c.host for c in failed] == ["web2.example.org"], failed
    assert named in failed[0].message
    assert {c.host: c.outcome for c in cases if c.task == CHECK} == {"web1.example.org": "passed"}
    assert "UNREACHABLE" not in proc.stdout


# The live job, against a host of the lab configured by the role.


@pytest.fixture(scope="module")
def lab_host(tmp_path_factory):
    settings = fleet.campus_vars()
    fleet.start_host(LIVE_HOST, LIVE_FQDN)
    try:
        rc, _changed, output = fleet.play(
            tmp_path_factory.mktemp("configure"), [LIVE_HOST], "smtp.relay.configure", settings
        )
        assert rc == 0, output
        yield settings
    finally:
        fleet.remove_host(LIVE_HOST)


def live_checkout(checkout: Path, settings: dict) -> Path:
    # The one change to the inventory a user's repository holds: the podman connection instead of SSH.
    write_inventory(checkout, {LIVE_HOST: {"ansible_connection": "containers.podman.podman"}}, settings)
    return checkout


def test_live_job_passes_a_host_that_matches_and_reaches_the_relay(tmp_path, lab_host):
    proc, cases = run_verify("live", live_checkout(tmp_path, lab_host))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [c for c in cases if c.outcome == "failed"] == []
    assert {c.host: c.outcome for c in cases if c.task == CHECK} == {LIVE_HOST: "passed"}
    probe = [c for c in cases if c.task.startswith("Compare the host's settings")]
    assert [c.outcome for c in probe] == ["passed"]  # the probe ran (it is skipped with probe=false)


def test_live_job_fails_a_drifted_host_with_a_failing_test_case(tmp_path, lab_host):
    port = lab_host["postfix_relay_port"]
    fleet.on_host(LIVE_HOST, "postconf", "-e", f"relayhost = [{lab_host['postfix_relay_host']}]:25")
    try:
        proc, cases = run_verify("live", live_checkout(tmp_path, lab_host))
    finally:
        fleet.on_host(LIVE_HOST, "postconf", "-e", f"relayhost = [{lab_host['postfix_relay_host']}]:{port}")
    assert proc.returncode != 0
    failed = [c for c in cases if c.outcome == "failed"]
    assert [(c.host, c.task) for c in failed] == [(LIVE_HOST, CHECK)], failed
    assert f"relayhost: expected [{lab_host['postfix_relay_host']}]:{port}, found" in failed[0].message
