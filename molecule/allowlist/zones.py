# SPDX-License-Identifier: GPL-3.0-or-later
"""Add (or remove) the allowlist scenario's zones on the lab's DNS server.

    python molecule/allowlist/zones.py add | remove

Reverse names live in one zone per address, so that they never clash with other scenarios' zones.
"""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.peers import lab  # noqa: E402

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
PTR = {
    "10.89.100.201": "al1.allowlist.test.",
    "fd00:89:100::201": "al1.allowlist.test.",
    "10.89.100.202": "other.allowlist.test.",
}


def zones() -> dict[str, str]:
    result = dict(FORWARD)
    for address, name in PTR.items():
        origin = ipaddress.ip_address(address).reverse_pointer
        result[origin] = f"@ IN PTR {name}\n"
    return result


def main(command: str) -> None:
    if command == "add":
        lab.dns_reload(zones())
        return
    zones_dir = lab.STATE / "dns" / "zones"
    for origin in zones():
        (zones_dir / f"{origin}.zone").unlink(missing_ok=True)
    lab.dns_reload()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "add")
