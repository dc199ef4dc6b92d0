# SPDX-License-Identifier: GPL-3.0-or-later
"""A DNS server (the lab's NSD peer, tests/peers/dns.py) for this scenario's names, on the lab bridge.

    python molecule/allowlist/zones.py start|stop STATE_DIR

It listens on the host side of the lab network (10.89.100.1, port 25353), so the scenario neither
restarts nor changes the shared DNS peer that other tests are using at the same time. It serves the
hosts' forward names (allowlist.test) and one reverse zone per address.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.peers.dns import full_zone  # noqa: E402

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


def start(state: Path) -> None:
    stop(state)
    zones_dir = state / "zones"
    zones_dir.mkdir(parents=True, exist_ok=True)
    for origin, text in zones().items():
        (zones_dir / f"{origin}.zone").write_text(full_zone(origin, text))
    with open(state / "dns.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/peers/dns.py"), "--listen", f"{LISTEN[0]}:{LISTEN[1]}",
             "--zones", str(zones_dir), "--workdir", str(state / "run")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
    (state / "dns.pid").write_text(str(proc.pid))
    if not answering(30):
        stop(state)
        raise SystemExit(f"the scenario's DNS server did not answer; see {state / 'dns.log'}")


def stop(state: Path) -> None:
    pid_file = state / "dns.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, signal.SIGTERM)  # the wrapper passes it on to nsd and exits with it
        for _unused in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)
    except ProcessLookupError:
        pass
    pid_file.unlink()


if __name__ == "__main__":
    command, state_dir = sys.argv[1], Path(sys.argv[2])
    {"start": start, "stop": stop}[command](state_dir)
