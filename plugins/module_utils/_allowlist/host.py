# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what an allowlist request learns from its host (FQDN, egress, Postfix, updates)."""

from __future__ import annotations

import datetime
import errno
import glob
import os
import re
import socket
import subprocess

from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner, parse_postconf_output
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import SEPARATORS

# Route lookups for hosts with no known relay: documentation addresses (RFC 5737, RFC 3849). A UDP
# connect() only asks the kernel for a route and a source address; no packet is sent to them.
ROUTE_PROBE = {4: "192.0.2.1", 6: "2001:db8::1"}

POSTFIX_SETTINGS = ("relayhost", "smtp_bind_address", "smtp_bind_address6", "inet_protocols")


def subprocess_runner(argv):
    """Default runner: (rc, stdout, stderr); rc 127 when the program is missing, like a shell."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: not found"
    return proc.returncode, proc.stdout, proc.stderr


def parse_inet_protocols(value: str | None) -> set[int]:
    """Postfix inet_protocols -> address families it may use; `all` (the default) means both."""
    words = set(SEPARATORS.split((value or "all").strip().lower())) - {""}
    if not words or "all" in words:
        return {4, 6}
    return {int(w[3]) for w in words if w in ("ipv4", "ipv6")}


class HostInfo:
    """What the module learns from the host it runs on; every outside effect goes through a seam.

    ``runner(argv) -> (rc, out, err)`` runs programs, ``root`` prefixes file paths (tests point it at
    a temporary tree) and ``now()`` gives the current UTC time.
    """

    def __init__(self, runner=subprocess_runner, root: str = "/", now=None, config_dir: str | None = None):
        self.runner = runner
        self.root = root
        self.now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.config_dir = config_dir

    def path(self, *parts: str) -> str:
        return os.path.join(self.root, *(p.lstrip("/") for p in parts))

    def fqdn(self) -> str:
        """The host's own idea of its FQDN, as `hostname -f` computes it (canonical name of its hostname)."""
        name = socket.gethostname()
        try:
            infos = socket.getaddrinfo(name, None, flags=socket.AI_CANONNAME)
        except OSError:
            return name
        canon = next((i[3] for i in infos if i[3]), "")
        return canon if "." in canon or "." not in name else name

    def postfix_settings(self) -> dict | None:
        """Relay-relevant main.cf values, or None when Postfix (postconf) is not installed."""
        argv = ["-c", self.config_dir] if self.config_dir else []
        rc, out, _err = PostconfRunner(self.runner).run_unchecked("postconf", [*argv, *POSTFIX_SETTINGS])
        # rc 127: no postconf. Any other failure: no main.cf yet (Debian's "No configuration"), not sending yet.
        return parse_postconf_output(out) if rc == 0 else None

    def source_address(self, destination: str, port: int = 25, bind: str | None = None) -> str | None:
        """The source address the kernel picks to reach ``destination`` (None: no route); sends nothing.

        With ``bind`` the socket is bound first, as Postfix does with smtp_bind_address; an address the
        host does not have raises OSError(EADDRNOTAVAIL), which callers report.
        """
        family = socket.AF_INET6 if ":" in destination else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            if bind:
                sock.bind((bind, 0))
            try:
                sock.connect((destination, port))
            except OSError as e:
                if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                    return None
                raise
            return sock.getsockname()[0].split("%", 1)[0]

    def automatic_updates(self) -> str:
        """`enabled`, `disabled` or `unknown` (not a Debian-family host)."""
        rc, out, _err = self.runner(["apt-config", "shell", "UU", "APT::Periodic::Unattended-Upgrade"])
        if rc != 0:
            return "unknown"
        match = re.search(r"UU='([^']*)'", out)
        enabled = bool(match) and match.group(1) not in ("", "0")
        installed = os.path.exists(self.path("/usr/bin/unattended-upgrade"))
        return "enabled" if enabled and installed else "disabled"

    def package_lists_updated(self) -> datetime.datetime | None:
        """When the package lists were last refreshed (apt's success stamp, else the newest list file)."""
        stamp = self.path("/var/lib/apt/periodic/update-success-stamp")
        candidates = [stamp] if os.path.exists(stamp) else glob.glob(self.path("/var/lib/apt/lists/*Release"))
        if not candidates:
            return None
        newest = max(os.path.getmtime(p) for p in candidates)
        return datetime.datetime.fromtimestamp(newest, datetime.timezone.utc)
