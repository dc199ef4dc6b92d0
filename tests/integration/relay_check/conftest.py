# SPDX-License-Identifier: GPL-3.0-or-later
"""The real relay peer on 127.0.0.1 (one listener per situation), and a container that drops packets."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.certs import make_certs

ROOT = Path(__file__).resolve().parents[3]
RELAY = ROOT / "tests" / "peers" / "relay.py"
USER, PASSWORD = "relayuser", "integration-s3cret"
BLOCKED_SENDER, BLOCKED_RECIPIENT = "blocked@sender.test", "nobody@dest.test"
LISTENERS = {
    # name: (tls, auth, certificate)
    "starttls": ("starttls", "optional", "relay"),
    "implicit": ("implicit", "required", "relay"),
    "plain": ("none", "none", None),
    "wrongname": ("implicit", "optional", "wrongname"),
    "expired": ("starttls", "optional", "expired"),
}
DROP_CONTAINER = "he-drop"
DROP_PORT, CLOSED_PORT = 2526, 2527
IMAGE = "localhost/smtprelay-peers:latest"


@dataclass
class Relay:
    ports: dict
    ca: str
    records_dir: Path

    def relayhost(self, listener: str) -> str:
        # "localhost" is in the certificate, so names are checked as Postfix would with a named relay.
        return f"[localhost]:{self.ports[listener]}"


def free_port() -> int:
    """A port nothing listens on (the kernel just handed it out and it was closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def relay(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("relay")
    paths = make_certs(workdir / "certs", ["relay.smtp-relay.test", "localhost"], ["127.0.0.1"])
    config = {
        "hostname": "relay.smtp-relay.test",
        "records_dir": str(workdir / "records"),
        "ready_file": str(workdir / "ready.json"),
        "users": {USER: PASSWORD},
        "reject_senders": [BLOCKED_SENDER],
        "reject_recipients": [BLOCKED_RECIPIENT],
        "listeners": [
            {"name": name, "host": "127.0.0.1", "port": 0, "tls": tls, "auth": auth,
             "auth_mechanisms": ["PLAIN", "LOGIN"],
             **({"cert": paths[cert], "key": paths[f"{cert}_key"]} if cert else {})}
            for name, (tls, auth, cert) in LISTENERS.items()
        ],
    }  # fmt: skip
    (workdir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    log = (workdir / "relay.log").open("w")
    proc = subprocess.Popen([sys.executable, str(RELAY), "--config", str(workdir / "config.json")], stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not (workdir / "ready.json").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"relay.py did not start: {(workdir / 'relay.log').read_text()}")
            time.sleep(0.1)
        ports = json.loads((workdir / "ready.json").read_text())
        yield Relay(ports, paths["ca"], workdir / "records")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _podman(*args, check=True):
    env = {**os.environ, "CONTAINERS_CONF": str(ROOT / "tests" / "containers.conf")}
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, env=env, timeout=120)


@pytest.fixture(scope="session")
def dropping_host():
    """IP of a container (its own network namespace) that drops DROP_PORT and refuses CLOSED_PORT."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: the packet-dropping container cannot be started")
    if _podman("image", "exists", IMAGE, check=False).returncode != 0:
        pytest.skip(f"image {IMAGE} is missing: build it with `make images`")
    _podman("rm", "-f", "-t", "0", DROP_CONTAINER, check=False)
    try:
        _podman("run", "-d", "--name", DROP_CONTAINER, "--cap-add", "NET_ADMIN", IMAGE, "sleep", "infinity")
        _podman("exec", DROP_CONTAINER, "iptables", "-A", "INPUT", "-p", "tcp", "--dport", str(DROP_PORT), "-j", "DROP")
        address = _podman("inspect", "-f", "{{.NetworkSettings.IPAddress}}", DROP_CONTAINER).stdout.strip()
        if not address:
            pytest.fail("the container has no IP address on podman's default network")
        yield address
    finally:
        _podman("rm", "-f", "-t", "0", DROP_CONTAINER, check=False)
