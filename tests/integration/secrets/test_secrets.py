# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay password is nowhere it should not be, after every playbook and every module that takes a secret.

All runs use SASL credentials at -vvv with the default callback (what people paste into tickets): configure
(fresh, again, then --check --diff after a password change and after dropping the credentials), verify (relay
up, relay down), allowlist (the requests sent from the controller through the relay with SMTP AUTH), refused
inputs, and modules.yml (relay_check, postfix_map, postconf on success and failure paths). Everything the
controller writes goes under one directory (outputs, ANSIBLE_LOG_PATH, local temp, ANSIBLE_HOME, TMPDIR, fact
cache, retry files, JUnit, allowlist files); the inventories holding the secrets, written by the test, are kept
apart. Searched for: each password, and the base64 forms AUTH sends (the password, "\\0user\\0password",
"user\\0user\\0password") and "user:password".
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.integration import fleet
from tests.integration.faults import hosts
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-secrets-s1"
HERE = Path(__file__).parent
# Files and directories the search skips on the host: kernel views, and devices.
PRUNED = ("/proc", "/sys", "/dev")


def forms(user: str, password: str) -> dict[str, str]:
    """{what: text} for one password: the text, and how AUTH PLAIN and LOGIN carry it (padding left out, so that
    the text is found inside a longer base64 run too)."""

    def b64(raw: str) -> str:
        return base64.b64encode(raw.encode()).decode().rstrip("=")

    return {
        "password": password,
        "base64(password)": b64(password),
        "base64(\\0user\\0password)": b64(f"\0{user}\0{password}"),
        "base64(user\\0user\\0password)": b64(f"{user}\0{user}\0{password}"),
        "user:password": f"{user}:{password}",
    }


class Controller:
    """ansible-playbook runs whose every written file lands under ``root``; inputs (with secrets) under ``inputs``."""

    def __init__(self, root: Path, inputs: Path):
        self.root, self.inputs = root, inputs
        for sub in ("output", "local-tmp", "home", "tmp", "facts", "retry", "junit"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        self.runs: dict[str, tuple[int, str]] = {}

    def env(self) -> dict:
        root = self.root
        return dict(
            os.environ,
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_LOG_PATH=str(root / "ansible.log"),
            ANSIBLE_LOCAL_TEMP=str(root / "local-tmp"),
            ANSIBLE_HOME=str(root / "home"),
            TMPDIR=str(root / "tmp"),
            ANSIBLE_CACHE_PLUGIN="ansible.builtin.jsonfile",
            ANSIBLE_CACHE_PLUGIN_CONNECTION=str(root / "facts"),
            ANSIBLE_RETRY_FILES_ENABLED="true",
            ANSIBLE_RETRY_FILES_SAVE_PATH=str(root / "retry"),
            ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.junit",
            JUNIT_OUTPUT_DIR=str(root / "junit"),
        )

    def run(self, name: str, playbook: str, variables: dict, *options: str) -> int:
        """One run at -vvv; its output is kept as a controller file too (``output/NAME.txt``)."""
        inputs = self.inputs / name
        inputs.mkdir(parents=True)
        inventory = inputs / "inventory.yml"
        document = {"all": {"hosts": {HOST: {"ansible_connection": "containers.podman.podman"}}, "vars": variables}}
        inventory.write_text(yaml.safe_dump(document))
        inventory.chmod(0o600)
        command = ["ansible-playbook", "-vvv", "-i", str(inventory), playbook, *options]
        done = subprocess.run(command, text=True, capture_output=True, env=self.env(), check=False)
        output = done.stdout + done.stderr
        (self.root / "output" / f"{name}.txt").write_text(output)
        self.runs[name] = (done.returncode, output)
        return done.returncode


def search_files(root: Path, needles: dict[str, str]) -> list[str]:
    """'path: line' for every line of a file under root holding one of the needles (shown by name)."""
    hits = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        for line in path.read_bytes().decode("utf-8", "replace").splitlines():
            if any(text in line for text in needles.values()):
                hits.append(f"{path.relative_to(root)}: {which(needles, line)[:400]}")
    return hits


def search_host(needles: dict[str, str], command: str) -> list[str]:
    """Run a search command on the host that takes ``-e TEXT`` arguments and prints what matched, one a line."""
    patterns = " ".join(f"-e '{text}'" for text in needles.values())
    return [line for line in fleet.on_host(HOST, "sh", "-c", command.format(patterns=patterns)).splitlines() if line]


def which(needles: dict[str, str], line: str) -> str:
    """A matched line with every needle replaced by its name (the report never shows a secret)."""
    for what, text in needles.items():
        line = line.replace(text, f"<{what}>")
    return line


@pytest.fixture(scope="module")
def credentials():
    relay = lab.info()["relay"]
    # The relay's own password (random per lab) works; the second one is the new password of a change.
    second = f"Smtprelay2ndPw-{secrets.token_hex(8)}"
    needles = {
        **{f"relay {k}": v for k, v in forms(relay["username"], relay["password"]).items()},
        **{f"second {k}": v for k, v in forms(relay["username"], second).items()},
    }
    return {"user": relay["username"], "password": relay["password"], "second": second, "needles": needles}


@pytest.fixture(scope="module")
def campaign(tmp_path_factory, credentials):
    """Every run of the module, in order; the host is removed afterwards whatever happens."""
    controller = Controller(tmp_path_factory.mktemp("controller"), tmp_path_factory.mktemp("inputs"))
    role = hosts.relay_vars()
    changed_password = {**role, "postfix_relay_password": credentials["second"]}
    subject = f"secrets test mail {time.time()}"
    allowlist = {
        **role,
        "allowlist_output_dir": str(controller.root / "allowlist"),
        "allowlist_purpose": "Secret tests",
        "allowlist_team": "Reliability",
        "allowlist_contact": "ops@smtp-relay.test",
        "allowlist_report_only": True,
        "allowlist_subject": f"allowlist {subject}",
        "send": True,
        "allowlist_smtp_host": lab.info()["relay"]["ipv4"],
        "allowlist_smtp_port": lab.info()["relay"]["ports"]["submission"],
        "allowlist_smtp_secure": "starttls",
        # The send verifies the relay's certificate (its IP address is in it).
        "allowlist_smtp_ca_file": lab.info()["relay"]["ca_file"],
        "allowlist_smtp_username": credentials["user"],
        "allowlist_smtp_password": credentials["password"],
        "allowlist_mail_from": hosts.SENDER,
        "allowlist_mail_to": hosts.RECIPIENT,
    }
    modules = {
        "secret_user": credentials["user"],
        "secret_password": credentials["password"],
        "second_password": credentials["second"],
        "secret_subject": f"relay_check {subject}",
    }
    with hosts.hosts_started({HOST: "s1.smtp-relay.test"}):
        expected = {}
        expected["configure"] = (controller.run("configure", "smtp.relay.configure", role, "--diff"), 0)
        expected["configure again"] = (controller.run("configure again", "smtp.relay.configure", role, "--diff"), 0)
        expected["check diff after a password change"] = (
            controller.run("check diff", "smtp.relay.configure", changed_password, "--check", "--diff"),
            0,
        )
        sasl = ("postfix_relay_username", "postfix_relay_password")
        no_credentials = {k: v for k, v in role.items() if k not in sasl}
        expected["check diff dropping the credentials"] = (
            controller.run("check diff drop", "smtp.relay.configure", no_credentials, "--check", "--diff"),
            0,
        )
        expected["verify"] = (controller.run("verify", "smtp.relay.verify", role), 0)
        with hosts.relay_down():
            expected["verify, relay down"] = (controller.run("verify relay down", "smtp.relay.verify", role), 2)
        expected["allowlist"] = (controller.run("allowlist", "smtp.relay.allowlist", allowlist), 0)
        bad_choice = {**changed_password, "postfix_relay_tls": "bogus"}
        expected["bad input refused"] = (controller.run("bad input", "smtp.relay.configure", bad_choice), 2)
        bad_password = {**role, "postfix_relay_password": credentials["second"] + "\n"}
        expected["bad password refused"] = (controller.run("bad password", "smtp.relay.configure", bad_password), 2)
        expected["modules"] = (controller.run("modules", str(HERE / "modules.yml"), modules, "--diff"), 0)
        yield {
            "controller": controller,
            "expected": expected,
            "subjects": [allowlist["allowlist_subject"], modules["secret_subject"]],
        }


def test_every_run_ended_as_expected(campaign):
    controller = campaign["controller"]
    outcomes = {name: rc for name, (rc, _wanted) in campaign["expected"].items()}
    wanted = {name: want for name, (_rc, want) in campaign["expected"].items()}
    assert outcomes == wanted, "\n\n".join(f"== {n}\n{o[-3000:]}" for n, (_rc, o) in controller.runs.items())
    for name in ("check diff", "check diff drop"):
        assert "sasl_passwd" in controller.runs[name][1], f"{name}: the diff must show sasl_passwd (masked)"
    assert "postfix_relay_password" in controller.runs["bad password"][1]
    # The secrets did work: the relay recorded both authenticated mails.
    records_dir = lab.info()["relay"]["records_dir"]
    for subject in campaign["subjects"]:
        record = records.wait_for(records_dir, lambda r, s=subject: records.headers(r)["Subject"] == s, timeout=60)
        assert record["auth_user"] == lab.info()["relay"]["username"]


def test_no_output_holds_a_secret(campaign, credentials):
    needles = credentials["needles"]
    # Each line holding a secret, the secret replaced by its name: the report says where without showing it.
    hits = [
        f"{name}: {which(needles, line)[:400]}"
        for name, (_rc, output) in campaign["controller"].runs.items()
        for line in output.splitlines()
        if any(text in line for text in needles.values())
    ]
    print(f"outputs searched: {len(campaign['controller'].runs)} runs, {len(needles)} forms; hits: {len(hits)}")
    assert hits == [], "\n".join(hits)


def test_no_controller_file_holds_a_secret(campaign, credentials):
    root = campaign["controller"].root
    written = [p for p in root.rglob("*") if p.is_file()]
    assert (root / "ansible.log").stat().st_size > 0
    assert list((root / "junit").glob("*.xml")), "the JUnit callback wrote nothing"
    assert list((root / "allowlist").glob("*.txt")), "the allowlist playbook wrote no request"
    hits = search_files(root, credentials["needles"])
    print(f"controller files searched: {len(written)}; hits: {len(hits)}")
    assert hits == [], "\n".join(hits)


def test_no_world_readable_file_on_the_host_holds_a_secret(campaign, credentials):
    del campaign
    prune = " -o ".join(f"-path {p}" for p in PRUNED)
    command = (
        f"find / \\( {prune} \\) -prune -o -type f -perm -0004 -print0 | xargs -0 grep -lsF {{patterns}} -- ; true"
    )
    hits = search_host(credentials["needles"], command)
    counted = fleet.on_host(HOST, "sh", "-c", f"find / \\( {prune} \\) -prune -o -type f -perm -0004 -print | wc -l")
    print(f"world-readable host files searched: {counted.strip()}; hits: {len(hits)}")
    assert hits == [], "\n".join(hits)
    # The credentials are on the host where they belong, readable by root alone.
    stored = fleet.on_host(HOST, "stat", "-c", "%a %U", "/etc/postfix/sasl_passwd", "/etc/postfix/sasl_passwd.db")
    assert stored.split("\n")[:2] == ["600 root", "600 root"]


def test_the_hosts_journal_holds_no_secret(campaign, credentials):
    del campaign
    needles = credentials["needles"]
    # The journal did record the modules' invocations (else this search would prove nothing).
    logged = fleet.on_host(HOST, "sh", "-c", "journalctl -o cat --no-pager | grep -c 'Invoked with' || true")
    assert int(logged) > 0, "the host's journal holds no module invocation"
    hits = search_host(needles, "journalctl -o cat --no-pager | grep -F {patterns}; true")
    shown = [which(needles, line)[:300] for line in hits]
    print(f"journal lines with a module invocation: {int(logged)}; with a secret: {len(hits)}")
    assert shown == [], "\n".join(shown)


def test_removing_a_credentials_table_shows_no_secret(campaign, credentials, tmp_path):
    del campaign  # the host is up
    controller = Controller(tmp_path / "controller", tmp_path / "inputs")
    variables = {"secret_user": credentials["user"], "second_password": credentials["second"]}
    rc = controller.run("remove table", str(HERE / "remove_table.yml"), variables, "--diff")
    output = controller.runs["remove table"][1]
    assert rc == 0, output
    needles = credentials["needles"]
    hits = [which(needles, line)[:400] for line in output.splitlines() if any(t in line for t in needles.values())]
    assert hits == [], "\n".join(hits)
