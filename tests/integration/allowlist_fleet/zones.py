# SPDX-License-Identifier: GPL-3.0-or-later
"""A DNS server (NSD through tests/peers/dns.py, as the lab's DNS peer) for this suite's names, on the lab bridge.

It listens on the host side of the lab network (10.89.100.1, port 25353), so the suite neither restarts nor changes
the shared DNS peer that other tests use. It serves the hosts' forward names (allowlist.test) and one reverse zone
per address. nsd_server() in tests/peers/dns.py listens on loopback only, which the containers cannot reach.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.peers.dns import full_zone

ROOT = Path(__file__).resolve().parents[3]
LISTEN = ("10.89.100.1", 25353)
FORWARD = {
    "allowlist.test": "\n".join(
        [
            "al1 IN A 10.89.100.201",
            "al1 IN AAAA fd00:89:100::201",
            "al2 IN A 10.89.100.202",
            "al2 IN AAAA fd00:89:100::202",
            # A public address only ever written into requests (no traffic goes to it).
            "nat IN A 11.22.33.44",
            "",
        ]
    )
}
# al1's names match both ways; al2's IPv4 points back to another name and its IPv6 has no PTR (the zone
# exists, so the answer is an authoritative "no such record", not a refusal).
PTR = {
    "10.89.100.201": "al1.allowlist.test.",
    "fd00:89:100::201": "al1.allowlist.test.",
    "10.89.100.202": "other.allowlist.test.",
    "fd00:89:100::202": None,
}


def zones() -> dict[str, str]:
    result = dict(FORWARD)
    for address, name in PTR.items():
        result[ipaddress.ip_address(address).reverse_pointer] = f"@ IN PTR {name}\n" if name else ""
    return result


def answering(timeout: float) -> bool:
    import dns.resolver

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port = [LISTEN[0]], LISTEN[1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            resolver.resolve("al1.allowlist.test", "A", lifetime=1)
            return True
        except Exception:
            time.sleep(0.3)
    return False


@contextlib.contextmanager
def serving(state: Path):
    """Serve the zones until the block ends; yields (address, port) once the server answers."""
    zones_dir = state / "zones"
    zones_dir.mkdir(parents=True, exist_ok=True)
    for origin, text in zones().items():
        (zones_dir / f"{origin}.zone").write_text(full_zone(origin, text))
    command = [
        sys.executable, str(ROOT / "tests" / "peers" / "dns.py"), "--listen", f"{LISTEN[0]}:{LISTEN[1]}",
        "--zones", str(zones_dir), "--workdir", str(state / "run"),
    ]  # fmt: skip
    with open(state / "dns.log", "ab") as log:
        # A session of its own: should the wrapper not pass SIGTERM on, its group (it and nsd) is killed.
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    try:
        if not answering(30):
            raise RuntimeError(f"the suite's DNS server did not answer; see {state / 'dns.log'}")
        yield LISTEN
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()  # the wrapper passes it on to nsd and exits with it
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
