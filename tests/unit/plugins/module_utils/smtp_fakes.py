# SPDX-License-Identifier: GPL-3.0-or-later
"""A scripted SMTP server on one end of a socketpair, and the probe's two seams faked: DNS and connections."""

from __future__ import annotations

import base64
import ipaddress
import socket
import ssl
import threading

from ansible_collections.smtp.relay.plugins.module_utils._dns import make_resolver

from .dns_fakes import StaticBackend


class FakeRelay(threading.Thread):
    """Speaks just enough SMTP for the probe; ``replies`` overrides the answer to a command (by verb)."""

    def __init__(self, sock, *, greeting="220 fake.relay.test ESMTP", extensions=("AUTH PLAIN LOGIN", "8BITMIME"),
                 replies=None, tls_context=None, users=None):  # fmt: skip
        super().__init__(daemon=True)
        self.sock = sock
        self.greeting = greeting
        self.extensions = list(extensions)
        self.replies = replies or {}
        self.tls_context = tls_context
        self.users = users or {}
        self.seen: list[str] = []

    def send(self, text: str):
        self.file.write((text + "\r\n").encode())
        self.file.flush()

    def run(self):
        try:
            self.file = self.sock.makefile("rwb")
            if self.greeting is None:
                self.sock.recv(1)  # say nothing until the client gives up
                return
            self.send(self.greeting)
            self.loop()
        except (OSError, ValueError):
            pass
        finally:
            self.sock.close()

    def ehlo_lines(self):
        lines = ["fake.relay.test", *self.extensions]
        return [f"250{'-' if i < len(lines) - 1 else ' '}{line}" for i, line in enumerate(lines)]

    def loop(self):
        while True:
            line = self.file.readline()
            if not line:
                return
            command = line.decode().rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            self.seen.append(verb)
            if verb in self.replies:
                self.send(self.replies[verb])
                if verb == "DATA" and self.replies[verb].startswith("354"):
                    self.read_data()
            elif verb == "EHLO":
                for reply in self.ehlo_lines():
                    self.send(reply)
            elif verb == "STARTTLS" and self.tls_context:
                self.send("220 2.0.0 go ahead")
                self.file.close()
                self.sock = self.tls_context.wrap_socket(self.sock, server_side=True)
                self.file = self.sock.makefile("rwb")
            elif verb == "AUTH":
                self.auth(command)
            elif verb == "DATA":
                self.send("354 go ahead")
                self.read_data()
            elif verb == "QUIT":
                self.send("221 bye")
                return
            else:
                self.send("250 2.0.0 Ok")

    def auth(self, command: str):
        parts = command.split()
        if parts[1].upper() == "PLAIN" and len(parts) == 3:
            _authz, user, password = base64.b64decode(parts[2]).decode().split("\0")
        else:
            if len(parts) == 3:  # LOGIN with the user name as an initial response (RFC 4954)
                user = base64.b64decode(parts[2]).decode()
            else:
                self.send("334 VXNlcm5hbWU6")
                user = base64.b64decode(self.file.readline().strip()).decode()
            self.send("334 UGFzc3dvcmQ6")
            password = base64.b64decode(self.file.readline().strip()).decode()
        ok = self.users.get(user) == password
        self.send("235 2.7.0 Authentication successful" if ok else "535 5.7.8 Authentication credentials invalid")

    def read_data(self):
        while self.file.readline().rstrip(b"\r\n") != b".":
            pass
        self.send(self.replies.get("DATA_END", "250 2.0.0 Ok: queued as 4FAKE123"))


def records_for(addresses=None, mx=None) -> dict:
    """StaticBackend records from ``{name: [ip, ...]}`` and ``{domain: [(preference, exchange), ...]}``."""
    records: dict = {}
    for name, ips in (addresses or {}).items():
        for ip in ips:
            rdtype = "A" if ipaddress.ip_address(ip).version == 4 else "AAAA"
            records.setdefault((name, rdtype), []).append(ip)
    for domain, exchanges in (mx or {}).items():
        records[(domain, "MX")] = list(exchanges)
    return records


class FakeNetwork:
    """The probe's seams: a resolver over a StaticBackend (``addresses``, ``mx``; ``timeouts``: names that never
    answer) and a ``connect`` whose behaviour is chosen per port (a FakeRelay by default)."""

    def __init__(self, addresses=None, mx=None, ports=None, relay_kwargs=None, timeouts=()):
        self.backend = StaticBackend(records_for(addresses, mx), timeouts=timeouts)
        self.resolver = make_resolver(backend=self.backend)
        self.ports = ports or {}
        self.relay_kwargs = relay_kwargs or {}
        self.relays: list[FakeRelay] = []
        self.connects: list[tuple[str, int]] = []

    def seams(self) -> dict:
        """Keyword arguments for probe() and relay_check's run()."""
        return {"resolver": self.resolver, "connect": self.connect}

    def connect(self, address, port, timeout):
        self.connects.append((address, port))
        behaviour = self.ports.get(port, "relay")
        if behaviour == "refused":
            raise ConnectionRefusedError(111, "Connection refused")
        if behaviour == "timeout":
            raise TimeoutError("timed out")
        if behaviour == "unreachable":
            raise OSError(101, "Network is unreachable")
        client, server = socket.socketpair()
        client.settimeout(timeout)
        relay = FakeRelay(server, **self.relay_kwargs)
        self.relays.append(relay)
        relay.start()
        return client


def server_context(cert) -> ssl.SSLContext:
    """A server-side context for a trustme LeafCert."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    return context
