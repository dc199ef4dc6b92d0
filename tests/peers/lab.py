# SPDX-License-Identifier: GPL-3.0-or-later
"""The test lab: a podman network, one peers container holding the SMTP relay and the DNS server, and the
providers' relay (tests/peers/providers.py: the providers' host names, in a container of its own).

    python -m tests.peers.lab up | down | status | relay-stop | relay-start | dns-reload

Everything lives on the project's own network `smtprelay` (10.89.100.0/24, fd00:89:100::/64); the
peers container is 10.89.100.2 and answers to relay.smtp-relay.test through podman's DNS, so
managed containers on the same network reach it by name. The host reaches it through the bridge.
State (certificates, relay config and records, zones, credentials) is kept in .peers/, and what
tests need is written to .peers/peers.json.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STATE = ROOT / ".peers"
INFO = STATE / "peers.json"

NETWORK = "smtprelay"
SUBNET4, GATEWAY4 = "10.89.100.0/24", "10.89.100.1"
SUBNET6 = "fd00:89:100::/64"
PEERS = "smtprelay-peers"
PEERS_IP4, PEERS_IP6 = "10.89.100.2", "fd00:89:100::2"
PEERS_IMAGE = "localhost/smtprelay-peers:latest"
RELAY_NAME = "relay.smtp-relay.test"
LAB_DOMAIN = "smtp-relay.test"
RELAY_USER = "relayuser"
# Sender domains the "campus" listener admits, as a campus or agency relay would.
CAMPUS_DOMAINS = ["campus.smtp-relay.test"]

# name -> (port, tls, cert, auth)
LISTENERS = {
    "plain": (25, "none", "relay", "none"),
    "campus": (587, "starttls", "relay", "none"),
    "submission": (2587, "starttls", "relay", "required"),
    "submissions": (465, "implicit", "relay", "required"),
    "forward": (30002, "implicit", "relay", "required"),
    "wrongname": (2465, "implicit", "wrongname", "none"),
    "expired": (2466, "implicit", "expired", "none"),
}


SECRET_KEYS = ("relay", "providers")


def podman(*args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, CONTAINERS_CONF=str(ROOT / "tests" / "containers.conf"))
    return subprocess.run(["podman", *args], check=check, text=True, capture_output=capture, env=env)


def ensure_network() -> None:
    if podman("network", "exists", NETWORK, check=False).returncode != 0:
        podman(
            "network", "create", "--subnet", SUBNET4, "--gateway", GATEWAY4,
            "--ipv6", "--subnet", SUBNET6, NETWORK,
        )  # fmt: skip


def write_certs() -> dict:
    from tests.peers import providers
    from tests.peers.certs import make_certs

    certs = STATE / "certs"
    # Made once, all from one CA (whose key is not kept): a lab of before the providers gets a new set.
    if not (certs / "ca.pem").exists() or not (certs / "providers.pem").exists():
        make_certs(
            certs,
            names=[RELAY_NAME],
            ips=[PEERS_IP4, PEERS_IP6, "127.0.0.1"],
            others={"providers": [*providers.ALL_NAMES, providers.IP4]},
        )
    return {"ca": str(certs / "ca.pem"), "dir": str(certs)}


def relay_config(password: str) -> dict:
    listeners = []
    for name, (port, tls, cert, auth) in LISTENERS.items():
        listener = {"name": name, "host": "", "port": port, "tls": tls, "auth": auth}
        if tls != "none":
            listener.update(cert=f"/peers/certs/{cert}.pem", key=f"/peers/certs/{cert}.key")
        if name == "campus":
            listener["allowed_sender_domains"] = CAMPUS_DOMAINS
        listeners.append(listener)
    return {
        "hostname": RELAY_NAME,
        "records_dir": "/peers/relay/records",
        "ready_file": "/peers/relay/ready.json",
        "users": {RELAY_USER: password},
        "reject_senders": ["rejected@campus.smtp-relay.test"],
        "reject_recipients": ["nobody@smtp-relay.test"],
        "listeners": listeners,
    }


def base_zone() -> str:
    return "\n".join(
        [
            "$TTL 300",
            f"@ IN SOA ns.{LAB_DOMAIN}. hostmaster.{LAB_DOMAIN}. 1 3600 600 86400 300",
            f"@ IN NS ns.{LAB_DOMAIN}.",
            f"ns IN A {PEERS_IP4}",
            f"relay IN A {PEERS_IP4}",
            f"relay IN AAAA {PEERS_IP6}",
            "",
        ]
    )


def write_zones(extra: dict[str, str] | None = None) -> Path:
    """The lab zone, the providers' names, plus ``extra`` ({origin: records}; an SOA head is added where missing)."""
    from tests.peers import providers
    from tests.peers.dns import full_zone

    zones = STATE / "dns" / "zones"
    zones.mkdir(parents=True, exist_ok=True)
    for stale in zones.glob("*.zone"):
        stale.unlink()
    wanted = {LAB_DOMAIN: base_zone(), **providers.zones(), **(extra or {})}
    for origin, text in wanted.items():
        (zones / f"{origin}.zone").write_text(full_zone(origin, text))
    return zones


RELAY_CMD = "exec python3 /project/tests/peers/relay.py --config /peers/relay/config.json >>/peers/relay/log 2>&1"
DNS_CMD = (
    "exec python3 /project/tests/peers/dns.py --listen 10.89.100.2:53 "
    "--zones /peers/dns/zones --workdir /peers/dns/run >>/peers/dns/log 2>&1"
)


def start_processes() -> None:
    podman("exec", "-d", PEERS, "sh", "-c", RELAY_CMD)
    podman("exec", "-d", PEERS, "sh", "-c", DNS_CMD)


def wait_for_port(host: str, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"peer {host}:{port} did not come up within {timeout:.0f}s (see .peers/*/log)"
                ) from None
            time.sleep(0.3)


def wait_for_dns(name: str = RELAY_NAME, rdtype: str = "A", timeout: float = 30) -> None:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [PEERS_IP4]
    deadline = time.monotonic() + timeout
    while True:
        try:
            resolver.resolve(name, rdtype, lifetime=2)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise SystemExit(f"DNS peer did not answer for {name} (see .peers/dns/log)") from None
            time.sleep(0.3)


def up() -> dict:
    down(quiet=True)
    # Records of an earlier lab must not count as arrivals of this one.
    shutil.rmtree(STATE / "relay" / "records", ignore_errors=True)
    for sub in ("relay/records", "dns/run"):
        (STATE / sub).mkdir(parents=True, exist_ok=True)
    ensure_network()
    certs = write_certs()
    password = secrets.token_urlsafe(18)
    config_path = STATE / "relay" / "config.json"
    config_path.write_text(json.dumps(relay_config(password), indent=2))
    config_path.chmod(0o600)
    write_zones()
    podman(
        "run", "-d", "--name", PEERS, "--network", NETWORK, "--ip", PEERS_IP4, "--ip6", PEERS_IP6,
        "--network-alias", RELAY_NAME, "--cap-add", "NET_ADMIN",
        "-v", f"{ROOT}:/project:ro", "-v", f"{STATE}:/peers", PEERS_IMAGE, "sleep", "infinity",
    )  # fmt: skip
    start_processes()
    for port, *_unused in LISTENERS.values():
        wait_for_port(PEERS_IP4, port)
    wait_for_dns()
    info = {
        "network": NETWORK,
        "gateway": GATEWAY4,
        "relay": {
            "host": RELAY_NAME,
            "ipv4": PEERS_IP4,
            "ipv6": PEERS_IP6,
            "ports": {name: spec[0] for name, spec in LISTENERS.items()},
            "username": RELAY_USER,
            "password": password,
            "ca_file": certs["ca"],
            "campus_domains": CAMPUS_DOMAINS,
            "records_dir": str(STATE / "relay" / "records"),
        },
        "dns": {"nameserver": PEERS_IP4, "port": 53, "zones_dir": str(STATE / "dns" / "zones"), "domain": LAB_DOMAIN},
    }
    INFO.write_text(json.dumps(info, indent=2))
    INFO.chmod(0o600)
    print(f"peers up: relay {RELAY_NAME} ({PEERS_IP4}) ports {info['relay']['ports']}, DNS {PEERS_IP4}:53")
    from tests.peers import providers

    info["providers"] = providers.up()
    return info


def down(quiet: bool = False) -> None:
    from tests.peers import providers

    providers.down()
    podman("rm", "-f", "-t", "2", PEERS, check=False)
    if podman("network", "exists", NETWORK, check=False).returncode == 0:
        users = podman("ps", "-a", "--filter", f"network={NETWORK}", "--format", "{{.Names}}", check=False).stdout
        if not users.strip():
            podman("network", "rm", NETWORK, check=False)
    if INFO.exists():
        INFO.unlink()
    if not quiet:
        print("peers down")


def info() -> dict:
    """What tests need to reach the peers; fails clearly when the lab is not up."""
    if not INFO.exists():
        raise RuntimeError("the test peers are not running: start them with `make peers-up`")
    return json.loads(INFO.read_text())


def relay_stop() -> None:
    podman("exec", PEERS, "pkill", "-f", "tests/peers/relay.py", check=False)


def relay_start() -> None:
    podman("exec", "-d", PEERS, "sh", "-c", RELAY_CMD)
    wait_for_port(PEERS_IP4, LISTENERS["campus"][0])


def dns_reload(extra: dict[str, str] | None = None) -> None:
    """Serve the lab zone plus ``extra`` ({origin: records}): NSD is restarted with the new zones."""
    write_zones(extra)
    # NSD outlives its wrapper when the wrapper is killed: stop both, and wait until the port is free.
    podman(
        "exec", PEERS, "sh", "-c",
        "pkill -f tests/peers/dns.py; pkill -x nsd; "
        "for i in $(seq 50); do pgrep -x nsd >/dev/null || exit 0; sleep 0.1; done; pkill -9 -x nsd",
        check=False,
    )  # fmt: skip
    podman("exec", "-d", PEERS, "sh", "-c", DNS_CMD)
    for origin in extra or {LAB_DOMAIN: ""}:
        wait_for_dns(origin, "SOA")


def main(argv: list[str]) -> int:
    commands = {
        "up": up,
        "down": down,
        # Without the sections that hold credentials.
        "status": lambda: print(json.dumps({k: v for k, v in info().items() if k not in SECRET_KEYS}, indent=2)),
        "relay-stop": relay_stop,
        "relay-start": relay_start,
        "dns-reload": dns_reload,
    }
    if len(argv) != 1 or argv[0] not in commands:
        print(f"usage: python -m tests.peers.lab {{{'|'.join(commands)}}}", file=sys.stderr)
        return 2
    if shutil.which("podman") is None:
        print("podman is not installed: run `make deps`", file=sys.stderr)
        return 1
    commands[argv[0]]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
