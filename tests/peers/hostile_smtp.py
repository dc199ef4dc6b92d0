# SPDX-License-Identifier: GPL-3.0-or-later
"""A hostile SMTP server on 127.0.0.1, for proving that an SMTP client (relay_check's probe) stays bounded.

    with HostileSMTP("drip", tls="implicit") as server:
        probe(ProbeSpec(host="127.0.0.1", port=server.port, tls="implicit", is_ip=True, timeout=1))

Plain Python (threads, the standard library and trustme); listens on an ephemeral port of 127.0.0.1 only.

Modes (``MODES``):

- ``good``: a well-behaved ESMTP relay: EHLO (PIPELINING, 8BITMIME, SMTPUTF8, STARTTLS, AUTH PLAIN LOGIN),
  STARTTLS, AUTH against ``users`` (UTF-8), MAIL, RCPT, DATA, RSET, NOOP, QUIT; records what it was told.
- ``silent``: accepts the connection and never says a word (nor answers a TLS handshake).
- ``stall_after_banner``: greets, then reads every command and never answers.
- ``drip``: a multi-line greeting sent one byte at a time, ``delay`` seconds apart (with TLS, each byte is a
  TLS record of its own), then behaves.
- ``drip_ehlo``: greets at once, then drips every EHLO reply the same way.
- ``drip_handshake``: drips its side of the TLS handshake (implicit TLS at once; STARTTLS after the 220).
- ``garbage``: non-SMTP bytes, invalid UTF-8 included, instead of a greeting (on implicit TLS: instead of
  the TLS handshake), then reads until the client leaves.
- ``flood``: an endless multi-line greeting (``220-`` lines, ``flood_bytes`` at most).
- ``flood_line``: one endless greeting line with no line end (``flood_bytes`` at most).
- ``close_mid_starttls``: answers 220 to STARTTLS, then closes the connection.
- ``wrong_certificate``: as ``good``, with a certificate from the same CA for another name (``WRONG_NAME``).
- ``reject``: a 554 greeting, then 503 to everything but QUIT.
- ``slow``: as ``good``, but every reply comes ``delay`` seconds late (slow, yet within any sane timeout).

``tls`` is what the server speaks: ``starttls`` (STARTTLS offered), ``implicit`` (TLS from the first byte) or
``none``. ``replies`` overrides the answer to a command by verb (e.g. ``{"AUTH": "334 not-base64"}``);
``tls_connections`` lets only the first N connections start TLS (later ones get 454 to STARTTLS).
Certificates come from one trustme CA per process; ``server.write_ca(path)`` writes its PEM for clients.
The good certificate names ``RELAY_NAME`` and 127.0.0.1.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import socket
import ssl
import threading

import trustme

HOST = "127.0.0.1"
RELAY_NAME = "relay.hostile.test"
WRONG_NAME = "wrong-name.hostile.test"
TLS_MODES = ("starttls", "implicit", "none")
MODES = (
    "good",
    "silent",
    "stall_after_banner",
    "drip",
    "drip_ehlo",
    "drip_handshake",
    "garbage",
    "flood",
    "flood_line",
    "close_mid_starttls",
    "wrong_certificate",
    "reject",
    "slow",
)
# Neither SMTP nor TLS: NULs, control bytes and invalid UTF-8 (bad lead bytes, lone continuations).
GARBAGE = b"\xff\xfe\xfd\x00 garbage \x80\x81\xc3\x28 not SMTP \xf0\x28\x8c\xbc\r\n\x16\x03\x01\x00\x01\xff\r\n"
QUEUE_ID = "4HOSTILE1"


@functools.cache
def _certificates():
    """(CA, good leaf, wrong-name leaf), made once per process: key generation is the slow part."""
    ca = trustme.CA(organization_name="smtp.relay hostile test CA")
    return ca, ca.issue_cert(RELAY_NAME, HOST, common_name=RELAY_NAME), ca.issue_cert(WRONG_NAME)


class _Closed(Exception):
    """The client left or the server is stopping."""


class _Session:
    """One client connection: the current socket (plain, then maybe TLS) and a line reader over it."""

    def __init__(self, server: HostileSMTP, sock: socket.socket, number: int):
        self.server = server
        self.number = number  # 1 for the server's first connection
        self.sock = sock
        self.file = sock.makefile("rb")
        self.tls = False

    def write(self, data: bytes, drip: bool = False):
        if self.server.mode == "slow" and self.server.stop.wait(self.server.delay):
            raise _Closed
        if not drip:
            self.sock.sendall(data)
            return
        for i in range(len(data)):
            if self.server.stop.wait(self.server.delay):
                raise _Closed
            self.sock.sendall(data[i : i + 1])

    def reply(self, *lines: str, drip: bool = False):
        self.write(b"".join(line.encode() + b"\r\n" for line in lines), drip)

    def multiline(self, code: int, lines: list[str], drip: bool = False):
        self.reply(*(f"{code}{'-' if i < len(lines) - 1 else ' '}{line}" for i, line in enumerate(lines)), drip=drip)

    def readline(self) -> bytes:
        line = self.file.readline(65536)
        if not line:
            raise _Closed
        return line

    def drain(self):
        """Read and drop whatever the client sends until it leaves."""
        while self.sock.recv(4096):
            pass

    def start_tls(self):
        self.file.close()
        tls_sock = self.server.context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
        self.sock = tls_sock  # before the handshake, so that stop() can shut it down mid-handshake
        tls_sock.do_handshake()
        self.file = tls_sock.makefile("rb")
        self.tls = True

    def dripped_handshake(self):
        """The server's side of a TLS handshake, one byte every ``delay`` seconds (it never ends in time)."""
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.server.context.wrap_bio(incoming, outgoing, server_side=True)
        while True:
            try:
                tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                self.write(outgoing.read(), drip=True)
                data = self.sock.recv(4096)
                if not data:
                    raise _Closed from None
                incoming.write(data)

    def shutdown(self):
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self):
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.sock.close()


class HostileSMTP:
    """A context manager: ``with HostileSMTP(mode, tls) as server:`` listens on ``server.port`` of 127.0.0.1."""

    def __init__(self, mode: str = "good", tls: str = "starttls", *, delay: float = 0.05, users=None,
                 replies=None, smtputf8: bool = True, flood_bytes: int = 4 << 20, greeting_lines: int = 4,
                 tls_connections: int | None = None):  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        if tls not in TLS_MODES:
            raise ValueError(f"unknown tls {tls!r}; known: {', '.join(TLS_MODES)}")
        self.mode, self.tls, self.delay = mode, tls, delay
        self.users = dict(users or {})
        self.replies = dict(replies or {})
        self.smtputf8 = smtputf8
        self.flood_bytes = flood_bytes
        self.greeting_lines = greeting_lines
        self.tls_connections = tls_connections
        self.ca, good, wrong = _certificates()
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        (wrong if mode == "wrong_certificate" else good).configure_cert(self.context)
        self.stop = threading.Event()
        self.commands: list[str] = []  # every command line received, decoded leniently
        self.messages: list[dict] = []  # {mail_from, rcpt_to, data} of every message accepted
        self.connections = 0
        self.errors: list[str] = []  # unexpected server-side exceptions (a test may assert there are none)
        self._lock = threading.Lock()
        self._sessions: list[_Session] = []
        self._threads: list[threading.Thread] = []
        self.listener: socket.socket | None = None
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> HostileSMTP:
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        self._threads[0].join(timeout=5)  # the accept loop: no session starts after this
        with contextlib.suppress(OSError):
            self.listener.close()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.shutdown()
        for thread in list(self._threads):
            thread.join(timeout=5)

    @property
    def relayhost(self) -> str:
        return f"[{HOST}]:{self.port}"

    def write_ca(self, path) -> str:
        self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"hostile-smtp-{self.mode}")
        self._threads.append(thread)
        thread.start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                sock, _peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                session = _Session(self, sock, self.connections)
                self._sessions.append(session)
            self._spawn(self._serve, session)

    # -- behaviour ---------------------------------------------------------------------------------
    def _serve(self, session: _Session):
        try:
            self._behave(session)
        except (_Closed, OSError, ValueError):
            pass  # the client left, the server stops, or TLS broke: all part of the game
        except Exception as e:  # recorded for the test to see; a server thread never raises
            self.errors.append(f"{type(e).__name__}: {e}")
        finally:
            session.close()

    def _behave(self, s: _Session):
        mode = self.mode
        if mode == "silent":
            s.drain()
            return
        if mode == "garbage":
            s.write(GARBAGE)
            s.drain()
            return
        if self.tls == "implicit":
            if mode == "drip_handshake":
                s.dripped_handshake()
                return
            s.start_tls()
        if mode in ("flood", "flood_line"):
            self._flood(s)
            return
        if mode == "reject":
            s.reply("554 5.7.1 relay.hostile.test: no service for this host")
        elif mode == "drip":
            lines = [f"{RELAY_NAME} ESMTP tarpit, line {i}" for i in range(self.greeting_lines)]
            s.multiline(220, [*lines, "ready"], drip=True)
        else:
            s.reply(f"220 {RELAY_NAME} ESMTP hostile")
        self._dialogue(s)

    def _flood(self, s: _Session):
        unit = b"220-" + b"x" * 70 + b"\r\n" if self.mode == "flood" else b"x" * 1024
        chunk = (b"220 " if self.mode == "flood_line" else b"") + unit * (65536 // len(unit))
        sent = 0
        while sent < self.flood_bytes and not self.stop.is_set():
            s.write(chunk)
            sent += len(chunk)
        s.reply("220 flood over")
        s.drain()

    def _ehlo_lines(self, s: _Session) -> list[str]:
        lines = [RELAY_NAME, "PIPELINING", "SIZE 10240000", "8BITMIME"]
        if self.smtputf8:
            lines.append("SMTPUTF8")
        if self.tls == "starttls" and not s.tls:
            lines.append("STARTTLS")
        if s.tls or self.tls == "none":
            lines.append("AUTH PLAIN LOGIN")
        return lines

    def _dialogue(self, s: _Session):
        envelope: dict = {"mail_from": None, "rcpt_to": []}
        while True:
            command = s.readline().decode("utf-8", "replace").rstrip("\r\n")
            self.commands.append(command)
            verb = command.split(" ", 1)[0].upper()
            if self.mode == "stall_after_banner":
                continue
            if self.mode == "reject" and verb != "QUIT":
                s.reply("503 5.5.1 hostile.test: go away")
            elif verb in self.replies:
                s.reply(self.replies[verb])
            elif verb in ("EHLO", "HELO"):
                s.multiline(250, self._ehlo_lines(s), drip=self.mode == "drip_ehlo")
            elif verb == "STARTTLS":
                if self.tls != "starttls" or s.tls:
                    s.reply("503 5.5.1 TLS already active" if s.tls else "502 5.5.1 no STARTTLS here")
                    continue
                if self.tls_connections is not None and s.number > self.tls_connections:
                    s.reply("454 4.7.0 TLS not available now")
                    continue
                s.reply("220 2.0.0 Ready to start TLS")
                if self.mode == "close_mid_starttls":
                    return
                if self.mode == "drip_handshake":
                    s.dripped_handshake()
                    return
                s.start_tls()
            elif verb == "AUTH":
                self._auth(s, command)
            elif verb == "MAIL":
                envelope = {"mail_from": command[10:].strip(), "rcpt_to": []}
                s.reply("250 2.1.0 Ok")
            elif verb == "RCPT":
                envelope["rcpt_to"].append(command[8:].strip())
                s.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                s.reply("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (line := s.readline()) not in (b".\r\n", b".\n"):
                    data += line
                self.messages.append({**envelope, "data": bytes(data)})
                s.reply(f"250 2.0.0 Ok: queued as {QUEUE_ID}")
            elif verb == "QUIT":
                s.reply("221 2.0.0 Bye")
                return
            else:
                s.reply("250 2.0.0 Ok")

    def _auth(self, s: _Session, command: str):
        parts = command.split()
        mechanism = parts[1].upper() if len(parts) > 1 else ""
        if mechanism == "PLAIN":
            if len(parts) > 2:
                response = parts[2]
            else:
                s.reply("334 ")
                response = s.readline().decode().strip()
            _authz, user, password = base64.b64decode(response).decode("utf-8").split("\0")
        elif mechanism == "LOGIN":
            if len(parts) > 2:  # the user name as an initial response (RFC 4954), as smtplib sends it
                user = base64.b64decode(parts[2]).decode("utf-8")
            else:
                s.reply("334 VXNlcm5hbWU6")
                user = base64.b64decode(s.readline().strip()).decode("utf-8")
            s.reply("334 UGFzc3dvcmQ6")
            password = base64.b64decode(s.readline().strip()).decode("utf-8")
        else:
            s.reply("504 5.5.4 mechanism not supported")
            return
        ok = user in self.users and self.users[user] == password
        s.reply("235 2.7.0 Authentication successful" if ok else "535 5.7.8 Authentication credentials invalid")
