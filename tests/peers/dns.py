# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""DNS test peer: a real authoritative server (NSD) for a set of test zones, plus a server that never answers.

Standard library only (it also runs in the peers container with Debian's python3):

    python3 tests/peers/dns.py --listen 127.0.0.1:5353 --zones ZONES_DIR --workdir WORK_DIR

serves every ZONES_DIR/<origin>.zone in the foreground (``nsd -d`` as a child; SIGTERM/SIGINT stop both).
NSD runs as the calling user without dropping privileges (``username: ""``) and keeps its pid file, zone list
and xfrd state in WORK_DIR, so several servers can run side by side on different addresses or ports.

From pytest:

    with nsd_server({"relay-lab.net": "@ IN MX 10 mx\\nmx IN A 127.0.0.5\\n"}, workdir=tmp_path) as (host, port):
        ...  # the server answers by now; it is stopped on exit

A zone text without an SOA record gets a standard SOA/NS head. ``silent_udp_server()`` yields the address of a
UDP socket that reads queries and never answers, for timeout cases.

Everything listens on loopback only: tests must never send DNS traffic anywhere else.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_NSD = "/usr/sbin/nsd"
ZONE_HEAD = """$ORIGIN {origin}.
$TTL 300
@ IN SOA ns.{origin}. hostmaster.{origin}. 1 3600 600 86400 300
@ IN NS ns.{origin}.
ns IN A 127.0.0.1
"""


class PeerError(Exception):
    pass


def find_nsd(explicit: str | None = None) -> str:
    path = explicit or shutil.which("nsd") or DEFAULT_NSD
    if not os.access(path, os.X_OK):
        raise PeerError(f"nsd not found at {path}: install it (Debian: apt-get install nsd)")
    return path


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise PeerError(f"--listen {text!r}: give ADDRESS:PORT, e.g. 127.0.0.1:5353")
    host = host.strip("[]")
    ipaddress.ip_address(host)
    return host, int(port)


def full_zone(origin: str, text: str) -> str:
    origin = origin.rstrip(".")
    if " SOA " in f" {text.upper()} ".replace("\t", " "):
        return text if text.endswith("\n") else text + "\n"
    return ZONE_HEAD.format(origin=origin) + text + ("" if text.endswith("\n") else "\n")


def write_config(listen: tuple[str, int], zonesdir: Path, workdir: Path, origins: list[str]) -> Path:
    """nsd.conf for ``origins`` (files ``<origin>.zone`` in zonesdir); every state file inside workdir."""
    host, port = listen
    workdir.mkdir(parents=True, exist_ok=True)
    zone_blocks = "".join(f'zone:\n    name: "{o}"\n    zonefile: "{o}.zone"\n' for o in origins)
    config = f"""# Written by tests/peers/dns.py: a throw-away authoritative server for test zones.
server:
    ip-address: {host}@{port}
    port: {port}
    do-ip4: {"yes" if ipaddress.ip_address(host).version == 4 else "no"}
    do-ip6: {"yes" if ipaddress.ip_address(host).version == 6 else "no"}
    username: ""
    chroot: ""
    zonesdir: "{zonesdir}"
    pidfile: "{workdir}/nsd.pid"
    database: ""
    zonelistfile: "{workdir}/zone.list"
    xfrdfile: "{workdir}/xfrd.state"
    xfrdir: "{workdir}"
    server-count: 1
    verbosity: 1
    hide-version: yes
    refuse-any: yes
    reuseport: no
remote-control:
    control-enable: no
{zone_blocks}"""
    path = workdir / "nsd.conf"
    path.write_text(config, encoding="utf-8")
    return path


def zone_origins(zonesdir: Path) -> list[str]:
    return sorted(p.name[: -len(".zone")] for p in zonesdir.glob("*.zone"))


def _query_packet(name: str, qtype: int = 6) -> tuple[int, bytes]:
    qid = random.randrange(65536)
    labels = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".") if label)
    return qid, struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def answers(host: str, port: int, name: str, timeout: float = 0.5) -> bool:
    """True when the server at host:port replies to an SOA query for ``name`` (any rcode)."""
    qid, packet = _query_packet(name)
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(packet, (host, port))
            data, _unused = sock.recvfrom(4096)
        except OSError:
            return False
    return len(data) >= 12 and struct.unpack("!H", data[:2])[0] == qid


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on host (NSD binds both)."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    for _unused in range(50):
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = udp.getsockname()[1]
            with socket.socket(family, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port
    raise PeerError(f"no free port on {host}")


@contextlib.contextmanager
def nsd_server(zones: dict[str, str], listen: tuple[str, int] | None = None, workdir=None, nsd=None, ready=10.0):
    """Serve ``zones`` ({origin: zone text}) with NSD until the block ends; yields (host, port) once it answers."""
    if not zones:
        raise PeerError("nsd_server needs at least one zone")
    host, port = listen or ("127.0.0.1", 0)
    if not ipaddress.ip_address(host).is_loopback:
        raise PeerError(f"{host} is not a loopback address: test servers listen on loopback only")
    port = port or free_port(host)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = stack.enter_context(_tempdir())
        workdir = Path(workdir)
        zonesdir = workdir / "zones"
        zonesdir.mkdir(parents=True, exist_ok=True)
        for origin, text in zones.items():
            (zonesdir / f"{origin.rstrip('.')}.zone").write_text(full_zone(origin, text), encoding="utf-8")
        config = write_config((host, port), zonesdir, workdir, [o.rstrip(".") for o in zones])
        log = (workdir / "nsd.log").open("wb")
        stack.callback(log.close)
        proc = subprocess.Popen([find_nsd(nsd), "-d", "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        stack.callback(_stop, proc)
        probe = min(zones).rstrip(".")
        deadline = time.monotonic() + ready
        while not answers(host, port, probe):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                text = (workdir / "nsd.log").read_text(errors="replace")[-2000:]
                raise PeerError(f"nsd did not start on {host}:{port} (exit {proc.poll()}):\n{text}")
            time.sleep(0.05)
        yield host, port


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def _tempdir():
    with tempfile.TemporaryDirectory(prefix="dnspeer-") as path:
        yield Path(path)


@contextlib.contextmanager
def silent_udp_server(host: str = "127.0.0.2", port: int = 0):
    """A UDP socket that reads every query and answers none; yields (host, port)."""
    if not ipaddress.ip_address(host).is_loopback:
        raise PeerError(f"{host} is not a loopback address")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))
    sock.settimeout(0.1)
    stop = threading.Event()

    def drain():
        while not stop.is_set():
            with contextlib.suppress(OSError):
                sock.recvfrom(4096)

    thread = threading.Thread(target=drain, name="silent-dns", daemon=True)
    thread.start()
    try:
        yield host, sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT, e.g. 127.0.0.1:5353")
    parser.add_argument("--zones", required=True, type=Path, help="directory of <origin>.zone files")
    parser.add_argument("--workdir", required=True, type=Path, help="directory for nsd.conf, pid and state files")
    parser.add_argument("--nsd", help=f"path of the nsd binary (default: from PATH, else {DEFAULT_NSD})")
    args = parser.parse_args(argv)
    try:
        listen = parse_listen(args.listen)
        origins = zone_origins(args.zones)
        if not origins:
            raise PeerError(f"no <origin>.zone files in {args.zones}")
        config = write_config(listen, args.zones.resolve(), args.workdir.resolve(), origins)
        nsd = find_nsd(args.nsd)
    except (PeerError, ValueError, OSError) as exc:
        print(f"dns peer: {exc}", file=sys.stderr)
        return 2
    print(f"dns peer: serving {', '.join(origins)} on {listen[0]}:{listen[1]}", file=sys.stderr, flush=True)
    proc = subprocess.Popen([nsd, "-d", "-c", str(config)])

    # As a container's PID 1, nsd ignores SIGTERM (the kernel drops signals PID 1 has no handler for, and
    # `podman stop` then waits and kills): this process stays PID 1 and passes stop signals on.
    def forward(signum, _frame):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
