# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: a staged SMTP client probe of a relay, one check per stage, as Postfix would see it.

Stages: DNS (MX when the relayhost asks for it, then A/AAAA), TCP, banner, EHLO, STARTTLS or implicit TLS,
certificate (chain, name as Postfix matches it, SNI, expiry), AUTH mechanisms, optional AUTH, optional
MAIL FROM / RCPT TO, optional test message. Every outside effect goes through a ``Network`` object so that
unit tests can replace DNS and sockets. Passwords are used on the wire only, never put in a check.

Bounds, whatever the relay does (a tarpit dripping one byte at a time, a flood, garbage, silence):

- Time: every stage - each DNS lookup, each TCP connection attempt, the TLS handshake, and each SMTP command
  with its whole (multi-line) reply, the greeting included - ends within ``timeout`` seconds; the whole probe
  ends within ``PROBE_DEADLINE_FACTOR`` (6) x ``timeout``: a stage still running then fails as a timeout and
  the rest is skipped. Deadlines are kept on the monotonic clock by ``_Clock``, and every read and write of
  a session goes through it (``_Client.send``, ``_ReplyReader``), so a reply that trickles in cannot restart
  the socket timeout one byte at a time. Closing the sockets may add a moment to either bound.
- Size: one reply is at most ``MAX_REPLY_BYTES`` (64 KiB) in all and ``MAX_LINE_BYTES`` (8 KiB) per line;
  a larger one fails the stage (``<stage>.reply_too_large``) without being held in memory.
- Text: non-ASCII addresses go out only with SMTPUTF8 (RFC 6531) and fail their check when the relay does
  not offer it; a non-ASCII EHLO name fails the EHLO check; user names and passwords go out as UTF-8.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import email.message
import email.utils
import errno
import hashlib
import hmac
import os
import re
import smtplib
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP, UNKNOWN, WARN, check
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.providers import provider_ports
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import IMPLICIT_TLS_PORTS

EXPIRY_WARN_DAYS = 14
MAX_ADDRESSES = 5
PROBE_DEADLINE_FACTOR = 6  # the whole probe ends within this many times the stage timeout
MAX_REPLY_BYTES = 64 * 1024  # one SMTP reply, all its lines together
MAX_LINE_BYTES = 8192  # one reply line, as smtplib (and RFC 5321's 512 with plenty of room)
MAX_AUTH_CHALLENGES = 5

# Checks every probe run reports, in order; stages not reached are reported as skipped under these ids.
STAGES = (
    ("dns", "dns.address"),
    ("tcp", "tcp.connect"),
    ("smtp", "smtp.banner"),
    ("smtp", "smtp.ehlo"),
    ("tls", "tls.handshake"),
    ("cert", "cert.chain"),
    ("cert", "cert.name"),
    ("cert", "cert.expiry"),
    ("cert", "cert.sni"),
    ("auth", "auth.mechanisms"),
    ("auth", "auth.login"),
    ("envelope", "envelope.mail_from"),
    ("envelope", "envelope.rcpt_to"),
    ("message", "message.sent"),
)

_QUEUE_ID = re.compile(r"queued as\s+<?([^\s>]+)", re.IGNORECASE)


def alternative_ports_hint(host: str, port: int) -> str:
    """Which other ports to try when this one is blocked or closed."""
    known = provider_ports(host)
    if known:
        name, starttls, implicit = known
        parts = []
        other_starttls = [p for p in starttls if p != port]
        other_implicit = [p for p in implicit if p != port]
        if other_starttls:
            parts.append(f"{', '.join(map(str, other_starttls))} (STARTTLS)")
        if other_implicit:
            parts.append(f"{', '.join(map(str, other_implicit))} (implicit TLS)")
        return f"{name} also listens on " + " and ".join(parts) if parts else ""
    if port == 25:
        return (
            "port 25 is often blocked for outbound mail; most relays also accept 587 (STARTTLS) or 465 (implicit TLS)"
        )
    return ""


class LookupUnknown(Exception):
    """A DNS question got no definite answer (timeout, server failure, resolver missing)."""


class Network:
    """DNS and sockets as the probe uses them; unit tests substitute their own."""

    def __init__(self, nameservers=None):
        self.nameservers = nameservers

    def addresses(self, host: str, timeout: float) -> list[str]:
        """A and AAAA of host through the system resolver: [] when the name has none, LookupUnknown when unsure."""
        result: dict = {}

        def ask():
            try:
                infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
                result["value"] = list(dict.fromkeys(info[4][0] for info in infos))
            except socket.gaierror as e:
                result["error"] = e

        worker = threading.Thread(target=ask, daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise LookupUnknown(f"no answer within {timeout:g}s")
        error = result.get("error")
        if error is None:
            return result["value"]
        if error.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return []
        raise LookupUnknown(str(error))

    def mx(self, domain: str, timeout: float):
        """[(preference, exchange)] sorted, [] for no MX, LookupUnknown when unsure."""
        if not _dns.DNSPYTHON.available:
            raise LookupUnknown(_dns.DNSPYTHON.not_installed("MX records cannot be read"))
        answer = _dns.make_resolver(self.nameservers, timeout=timeout).query(domain, "MX")
        if not answer.answered:
            raise LookupUnknown(answer.error or answer.status)
        return sorted(answer.records)

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((address, port), timeout=timeout)


@dataclass
class ProbeSpec:
    """What to probe and how Postfix would judge it; built by the caller from options and main.cf."""

    host: str
    port: int
    tls: str = "starttls"
    mx_lookup: bool = False
    is_ip: bool = False
    timeout: float = 10.0
    tls_required: bool = True
    verify: bool = False
    ca_file: str | None = None
    ca_path: str | None = None
    cert_match: tuple = ("hostname",)
    servername: str | None = None
    ehlo_name: str = "localhost"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    expect_auth: bool = False
    permitted: object = None
    mail_from: str | None = None
    rcpt_to: tuple = ()
    send_test: bool = False
    check_mode: bool = False
    subject: str = "smtp.relay test message"
    body: str = "This is a test message sent by smtp.relay.relay_check.\n"


@dataclass
class ProbeResult:
    checks: list = field(default_factory=list)
    tls: dict = field(default_factory=dict)
    auth: dict = field(default_factory=dict)
    queue_id: str | None = None
    server: str | None = None
    address: str | None = None

    @property
    def offered_mechanisms(self):
        return self.auth.get("offered")


class ProbeLimit(Exception):
    """The relay overran one of the probe's bounds; ``kind`` ends the failed check's id (``tls.timeout``).

    Not an OSError (as SMTPException is), so that smtplib does not turn it into SMTPServerDisconnected.
    """

    kind = "limit"


class StageTimeout(ProbeLimit):
    kind = "timeout"


class ReplyTooLarge(ProbeLimit):
    kind = "reply_too_large"


class _Clock:
    """The probe's deadlines on the monotonic clock: one per stage, all under one for the whole probe."""

    def __init__(self, timeout: float):
        self.timeout = timeout
        self.total = PROBE_DEADLINE_FACTOR * timeout
        self.probe_end = time.monotonic() + self.total
        self.end = self.probe_end
        self.start()

    def start(self):
        """A new stage begins: it has ``timeout`` seconds, or what is left of the probe's, if less."""
        self.end = min(time.monotonic() + self.timeout, self.probe_end)

    def remaining(self) -> float:
        """Seconds left in this stage; StageTimeout when none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise StageTimeout(self.reason())
        return left

    def reason(self) -> str:
        if self.end >= self.probe_end:
            return f"the probe's overall deadline ({PROBE_DEADLINE_FACTOR} x timeout = {self.total:g}s) passed"
        return f"no complete answer within {self.timeout:g}s"


class _ReplyReader:
    """The file smtplib reads replies from: each recv waits only until the stage deadline; replies are bounded.

    smtplib's own file (``sock.makefile``) would restart the socket timeout at every recv, so a relay that
    drips a byte a second never times out, and would keep a reply of any number of lines.
    """

    def __init__(self, client: _Client):
        self.client = client
        self.buffer = bytearray()
        self.budget = MAX_REPLY_BYTES

    def new_reply(self):
        self.budget = MAX_REPLY_BYTES

    def readline(self, limit: int = -1) -> bytes:
        """One line of at most ``MAX_LINE_BYTES`` (line end included; smtplib asks for one byte more)."""
        limit = MAX_LINE_BYTES if limit < 0 else min(limit, MAX_LINE_BYTES)
        while True:
            newline = self.buffer.find(b"\n", 0, limit)
            if newline >= 0:
                end = newline + 1
                break
            if len(self.buffer) >= limit:
                raise ReplyTooLarge(f"a reply line longer than {limit} bytes")
            chunk = self._recv()
            if not chunk:
                end = len(self.buffer)  # the relay hung up: what came is the last (maybe partial) line
                break
            self.buffer += chunk
        line = bytes(self.buffer[:end])
        del self.buffer[:end]
        self.budget -= len(line)
        if self.budget < 0:
            raise ReplyTooLarge(f"a reply longer than {MAX_REPLY_BYTES // 1024} KiB")
        return line

    def _recv(self) -> bytes:
        sock, clock = self.client.sock, self.client.clock
        if sock is None:
            raise smtplib.SMTPServerDisconnected("not connected")
        sock.settimeout(clock.remaining())
        try:
            return sock.recv(4096)
        except TimeoutError:
            raise StageTimeout(clock.reason()) from None

    def close(self):
        self.buffer.clear()


class _Client(smtplib.SMTP):
    """smtplib over a socket we opened (and maybe wrapped) ourselves, every exchange bounded by the probe's clock.

    Each command sent starts a stage on the clock (so does the client itself, for the greeting); the reply is
    read through ``_ReplyReader`` within that stage's deadline.
    """

    def __init__(self, sock, clock: _Clock, ehlo_name: str):
        super().__init__(local_hostname=ehlo_name, timeout=clock.timeout)
        self.sock = sock
        self.clock = clock
        clock.start()

    def send(self, s):
        self.clock.start()
        if self.sock is not None:
            self.sock.settimeout(self.clock.remaining())
        try:
            super().send(s)
        except smtplib.SMTPServerDisconnected:
            self.clock.remaining()  # a send cut short by the deadline is a timeout, not a hang-up
            raise

    def getreply(self):
        if self.file is None:
            self.file = _ReplyReader(self)
        self.file.new_reply()
        return super().getreply()

    def forget_ehlo(self):
        # What smtplib.starttls() does after the handshake: the server's EHLO answer no longer counts.
        self.file = None
        self.helo_resp = self.ehlo_resp = None
        self.esmtp_features = {}
        self.does_esmtp = False

    def auth(self, mechanism, authobject, *, initial_response_ok=True):
        """smtplib's AUTH exchange, but credentials go out as UTF-8 (RFC 4616; what Cyrus SASL sends for Postfix).

        smtplib encodes them as ASCII and raises UnicodeEncodeError on any other character.
        """
        mechanism = mechanism.upper()
        initial = authobject() if initial_response_ok else None
        # smtplib's auth_login() tells the user name from the password by this count.
        self._auth_challenge_count = 0 if initial is None else 1
        if initial is not None:
            code, resp = self.docmd("AUTH", f"{mechanism} {base64.b64encode(initial.encode()).decode()}")
        else:
            code, resp = self.docmd("AUTH", mechanism)
        while code == 334:
            self._auth_challenge_count += 1
            if self._auth_challenge_count > MAX_AUTH_CHALLENGES:
                raise smtplib.SMTPException(f"AUTH {mechanism}: the relay keeps sending challenges")
            challenge = base64.b64decode(resp)
            code, resp = self.docmd(base64.b64encode(authobject(challenge).encode()).decode())
        if code in (235, 503):
            return code, resp
        raise smtplib.SMTPAuthenticationError(code, resp)

    def auth_cram_md5(self, challenge=None):
        if challenge is None:
            return None
        return self.user + " " + hmac.HMAC(self.password.encode(), challenge, "md5").hexdigest()


class _StageFailed(Exception):
    """The probe cannot go on past this stage (the check saying why is already recorded)."""


def _reply_text(reply) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:300]


def decode_certificate(der: bytes) -> dict:
    """Certificate fields from DER, as ssl's getpeercert() would give them for a verified peer."""
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(ssl.DER_cert_to_PEM_cert(der))
        decoded = ssl._ssl._test_decode_cert(path)  # the stdlib's only decoder for an unverified certificate
    finally:
        os.unlink(path)
    return decoded


def _name_field(name_tuples, key: str) -> str | None:
    for rdn in name_tuples or ():
        for k, v in rdn:
            if k == key:
                return v
    return None


def certificate_summary(der: bytes, now: datetime.datetime | None = None) -> dict:
    now = now or datetime.datetime.now(datetime.UTC)
    info = decode_certificate(der)
    sans = info.get("subjectAltName", ())
    not_after = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(info["notAfter"]), datetime.UTC)
    not_before = datetime.datetime.fromtimestamp(ssl.cert_time_to_seconds(info["notBefore"]), datetime.UTC)
    return {
        "subject": _name_field(info.get("subject"), "commonName"),
        "issuer": _name_field(info.get("issuer"), "commonName") or _name_field(info.get("issuer"), "organizationName"),
        "dns_names": [v for k, v in sans if k == "DNS"],
        "ip_addresses": [v.strip() for k, v in sans if k == "IP Address"],
        "not_before": not_before.isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": int((not_after - now).total_seconds() // 86400),
        "expired": not_after < now,
        "serial": info.get("serialNumber"),
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def _wildcard_match(cert_name: str, wanted: str) -> bool:
    cert_name, wanted = cert_name.lower().rstrip("."), wanted.lower().rstrip(".")
    if cert_name == wanted:
        return True
    if cert_name.startswith("*."):
        head, _unused, rest = wanted.partition(".")
        return bool(head) and rest == cert_name[2:]
    return False


def expected_names(strategies, hostname: str, nexthop: str) -> list[str]:
    """Postfix's smtp_tls_*_cert_match strategies -> names; a leading dot means 'any subdomain of'."""
    names = []
    for strategy in strategies:
        s = strategy.strip()
        if s == "hostname":
            names.append(hostname)
        elif s == "nexthop":
            names.append(nexthop)
        elif s == "dot-nexthop":
            names.append("." + nexthop)
        elif s:
            names.append(s)
    return list(dict.fromkeys(names))


def names_match(cert: dict, wanted: list[str]) -> str | None:
    """The expected name the certificate satisfies (DNS names, else CN, as Postfix does), or None."""
    presented = cert["dns_names"] or ([cert["subject"]] if cert.get("subject") else [])
    for name in wanted:
        if name.startswith("."):
            if any(p.lower().rstrip(".").endswith(name.lower()) for p in presented):
                return name
        elif any(_wildcard_match(p, name) for p in presented) or name in cert["ip_addresses"]:
            return name
    return None


class Probe:
    """One run of the stages against one relay destination."""

    def __init__(self, spec: ProbeSpec, network: Network | None = None, now=None):
        self.spec = spec
        self.net = network or Network()
        self.now = now or (lambda: datetime.datetime.now(datetime.UTC))
        self.result = ProbeResult()
        self.reported: set = set()
        self.clock = _Clock(spec.timeout)  # started again by run()
        self.current = ("dns.address", "DNS", time.monotonic())  # the stage a limit failure is reported under

    def begin(self, base_id: str, what: str) -> float:
        """Enter a stage: base id and words for a limit failure in it; returns when it started (for elapsed_ms)."""
        started = time.monotonic()
        self.current = (base_id, what, started)
        return started

    # -- bookkeeping -------------------------------------------------------------------------------
    def add(
        self, base_id: str, check_id: str, status: str, message: str, stage: str, *, hint=None, started=None, **extra
    ):
        if started is not None:
            extra["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        self.reported.add(base_id)
        self.result.checks.append(check(check_id, status, message, stage, hint, **extra))

    def limit_failed(self, error: ProbeLimit):
        """The relay overran a bound in the current stage: fail it as ``<stage>.timeout`` / ``.reply_too_large``."""
        base_id, what, started = self.current
        stage = dict((b, s) for s, b in STAGES).get(base_id, base_id.split(".")[0])
        if isinstance(error, StageTimeout):
            hint = (
                "the relay, or something on the way, stalls or answers too slowly (a tarpit, an overloaded relay, "
                "a firewall dropping packets mid-session); raise timeout only if it is merely slow"
            )
        else:
            hint = "no SMTP server sends that much: check that this port runs an SMTP service"
        self.add(base_id, f"{stage}.{error.kind}", FAIL, f"{what}: {error}", stage, hint=hint, started=started)

    def skip_rest(self, reason: str):
        for stage, base_id in STAGES:
            if base_id not in self.reported:
                self.add(base_id, base_id, SKIP, f"skipped: {reason}", stage)

    def sni(self) -> str | None:
        """The SNI Postfix sends: smtp_tls_servername's name, "hostname" or "nexthop"; none when unset."""
        name = self.spec.servername
        if name == "hostname":
            return self.result.server or self.spec.host
        if name == "nexthop":
            return self.spec.host
        return name or None

    def severity(self) -> str:
        """Certificate problems fail only where Postfix itself would refuse the relay (verify/secure)."""
        return FAIL if self.spec.verify else WARN

    # -- stages ------------------------------------------------------------------------------------
    def run(self) -> ProbeResult:
        self.clock = _Clock(self.spec.timeout)
        try:
            addresses = self.dns()
            sock = self.tcp(addresses)
            client = self.session(sock, record=True)
            try:
                self.auth_stage(client)
                self.envelope(client)
            except ProbeLimit:
                client.close()  # no QUIT: the relay is past answering in time
                raise
            finally:
                if client.sock is not None:
                    with contextlib.suppress(Exception):
                        client.quit()  # bounded like any command
                client.close()
        except _StageFailed as e:
            self.skip_rest(str(e))
        except ProbeLimit as e:
            self.limit_failed(e)
            self.skip_rest("the relay overran the probe's bounds")
        except (OSError, smtplib.SMTPException, ValueError) as e:
            # The relay hung up, stopped answering or said something unusable mid-session (ValueError: bad
            # base64 in an AUTH challenge, text that does not encode): say where, then skip what is left.
            self.add("probe.error", "probe.error", FAIL, f"the session broke off: {type(e).__name__}: {e}", "smtp")
            self.skip_rest("the session broke off")
        self.skip_rest("not asked for")
        return self.result

    def dns(self) -> list[str]:
        spec = self.spec
        server = spec.host
        if spec.mx_lookup:
            started = self.begin("dns.mx", f"MX lookup of {spec.host}")
            self.clock.start()
            try:
                records = self.net.mx(spec.host, self.clock.remaining())
            except LookupUnknown as e:
                self.add(
                    "dns.mx",
                    "dns.mx",
                    UNKNOWN,
                    f"MX lookup of {spec.host} got no answer: {e}",
                    "dns",
                    hint="check the host's resolvers",
                    started=started,
                )
                raise _StageFailed("the relay's MX records are unknown") from None
            if records:
                server = records[0][1]
                listed = ", ".join(f"{p} {n}" for p, n in records)
                self.add(
                    "dns.mx",
                    "dns.mx",
                    PASS,
                    f"MX of {spec.host}: {listed}; probing {server}",
                    "dns",
                    started=started,
                    mx=[{"preference": p, "exchange": n} for p, n in records],
                )
            else:
                self.add(
                    "dns.mx",
                    "dns.no_mx",
                    WARN,
                    f"{spec.host} has no MX record: Postfix uses its address",
                    "dns",
                    hint=f"write the relayhost in brackets, [{spec.host}]:{spec.port}, to skip the MX lookup",
                    started=started,
                )
        self.result.server = server
        if spec.is_ip:
            self.add("dns.address", "dns.address", SKIP, f"{server} is an IP address: no lookup", "dns")
            return [server]
        started = self.begin("dns.address", f"address lookup of {server}")
        self.clock.start()
        try:
            addresses = self.net.addresses(server, self.clock.remaining())
        except LookupUnknown as e:
            self.add(
                "dns.address",
                "dns.address",
                UNKNOWN,
                f"address lookup of {server} got no answer: {e}",
                "dns",
                hint="check the host's resolvers (/etc/resolv.conf)",
                started=started,
            )
            raise _StageFailed("the relay's address is unknown") from None
        if not addresses:
            self.add(
                "dns.address",
                "dns.no_address",
                FAIL,
                f"{server} has no A or AAAA record",
                "dns",
                hint="check the relay's name for typos",
                started=started,
            )
            raise _StageFailed("the relay has no address")
        self.add(
            "dns.address",
            "dns.address",
            PASS,
            f"{server} has address(es) {', '.join(addresses)}",
            "dns",
            started=started,
            addresses=addresses,
        )
        return addresses[:MAX_ADDRESSES]

    def tcp(self, addresses: list[str]) -> socket.socket:
        spec = self.spec
        failures = []
        for address in addresses:
            started = self.begin("tcp.connect", f"connecting to {address} port {spec.port}")
            self.clock.start()
            try:
                sock = self.net.connect(address, spec.port, self.clock.remaining())
            except StageTimeout as e:  # the probe's overall deadline passed: no more addresses to try
                failures.append((address, "timeout", str(e)))
                break
            except TimeoutError:
                failures.append((address, "timeout", f"no answer within {spec.timeout:g}s"))
            except ConnectionRefusedError:
                failures.append((address, "refused", "connection refused"))
            except OSError as e:
                kind = "unreachable" if e.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH) else "error"
                failures.append((address, kind, e.strerror or str(e)))
            else:
                self.result.address = address
                tried = "".join(f"; {a} failed: {why}" for a, _k, why in failures)
                self.add(
                    "tcp.connect",
                    "tcp.connect",
                    PASS,
                    f"connected to {address} port {spec.port}{tried}",
                    "tcp",
                    started=started,
                    address=address,
                )
                return sock
        address, kind, _why = failures[0]
        details = "; ".join(f"{a}: {why}" for a, _k, why in failures)
        alternatives = alternative_ports_hint(self.result.server or spec.host, spec.port)
        if kind == "timeout":
            message = (
                f"port {spec.port} of {self.result.server} does not answer ({details}): packets are dropped, "
                "so outbound traffic is blocked by a firewall or the relay does not admit this host"
            )
            hint = "ask for the egress path to be opened" + (f"; {alternatives}" if alternatives else "")
        elif kind == "refused":
            message = (
                f"port {spec.port} of {self.result.server} refuses connections ({details}): relay down or wrong port"
            )
            hint = "check the port and that the relay runs" + (f"; {alternatives}" if alternatives else "")
        else:
            message = f"cannot reach {self.result.server} port {spec.port} ({details})"
            hint = "check the host's routes and firewall"
        self.add(
            "tcp.connect", f"tcp.{kind}", FAIL, message, "tcp", hint=hint, started=started, address=address, reason=kind
        )
        raise _StageFailed(f"TCP connection failed ({kind})")

    def contexts(self):
        """(verifying context or None, non-verifying context)."""
        loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        loose.check_hostname = False
        loose.verify_mode = ssl.CERT_NONE
        strict = None
        if self.spec.ca_file or self.spec.ca_path:
            strict = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            strict.check_hostname = False
            strict.load_verify_locations(cafile=self.spec.ca_file or None, capath=self.spec.ca_path or None)
        return strict, loose

    def session(self, sock, record: bool):
        """Banner, EHLO and TLS on an open socket; returns the client after the (post-TLS) EHLO."""
        spec = self.spec
        try:
            strict, loose = self.contexts()
        except (OSError, ssl.SSLError) as e:
            self.add(
                "tls.handshake",
                "tls.ca_unreadable",
                FAIL,
                f"cannot load the CA ({spec.ca_file or spec.ca_path}): {e}",
                "tls",
                hint="check ca_file / smtp_tls_CAfile",
            )
            sock.close()
            raise _StageFailed("the CA cannot be loaded") from None
        context = strict or loose
        if spec.tls == "none":
            for stage, base_id in STAGES:
                if stage in ("tls", "cert"):
                    self.add(base_id, base_id, SKIP, "skipped: TLS is off (tls=none)", stage)
        if spec.tls == "implicit":
            sock = self.handshake(sock, context, loose)
        client = _Client(sock, self.clock, spec.ehlo_name)
        try:
            self.banner(client)
            self.ehlo(client)
            if spec.tls == "starttls":
                self.starttls(client, context, loose)
        except BaseException:
            client.close()
            raise
        return client

    def banner(self, client: _Client):
        spec = self.spec
        started = self.begin("smtp.banner", "the greeting")
        try:
            code, text = client.getreply()
        except ReplyTooLarge:
            raise  # smtp.reply_too_large, from run()
        except (StageTimeout, smtplib.SMTPServerDisconnected, OSError) as e:
            timed_out = isinstance(e, StageTimeout)
            implicit_hint = (
                "the port may speak implicit TLS: use tls=implicit / smtp_tls_wrappermode = yes"
                if spec.tls != "implicit" and (spec.port in IMPLICIT_TLS_PORTS or timed_out)
                else "check that this port runs an SMTP service"
            )
            self.add(
                "smtp.banner",
                "smtp.no_banner",
                FAIL,
                f"the greeting: {e}" if timed_out else "the connection closed before the greeting",
                "smtp",
                hint=implicit_hint,
                started=started,
            )
            raise _StageFailed("no SMTP greeting") from None
        text = _reply_text(text)
        if code == -1:
            # smtplib's code for a reply that does not start with three digits.
            self.add(
                "smtp.banner",
                "smtp.not_smtp",
                FAIL,
                f"the relay's greeting is not SMTP: {text!r}",
                "smtp",
                hint="check that this port runs an SMTP service"
                + ("" if spec.tls == "implicit" else "; if it speaks TLS at once, use tls=implicit"),
                started=started,
            )
            raise _StageFailed("the relay does not speak SMTP")
        if code != 220:
            self.add(
                "smtp.banner",
                "smtp.banner_rejected",
                FAIL,
                f"the relay greets with {code} {text}",
                "smtp",
                hint="the relay refuses this host: is its egress IP allowed on the relay?",
                started=started,
            )
            raise _StageFailed("the relay refused the session")
        self.add("smtp.banner", "smtp.banner", PASS, f"220 {text}", "smtp", started=started, banner=text)

    def ehlo(self, client: _Client, after_tls: bool = False):
        name = self.spec.ehlo_name
        started = self.begin("smtp.ehlo", "EHLO after STARTTLS" if after_tls else "EHLO")
        if not (name.isascii() and name.isprintable() and name and " " not in name):
            try:
                alabel = name.encode("idna").decode("ascii")
            except UnicodeError:
                alabel = None
            self.add(
                "smtp.ehlo",
                "smtp.ehlo_name_invalid",
                FAIL,
                f"the EHLO name {name!r} is not a domain name in ASCII, as SMTP requires",
                "smtp",
                hint="set smtp_helo_name / myhostname (or ehlo_name) to the host's name"
                + (f" in its ASCII form, {alabel}" if alabel and alabel != name else ""),
            )
            raise _StageFailed("the EHLO name is not ASCII")
        try:
            code, text = client.ehlo(name)
        except ProbeLimit:
            raise  # smtp.timeout / smtp.reply_too_large, from run()
        except (OSError, smtplib.SMTPException) as e:
            code, text = 0, str(e)
        if code != 250:
            self.add(
                "smtp.ehlo",
                "smtp.ehlo_rejected",
                FAIL,
                f"EHLO {name} answered {code} {_reply_text(text)}",
                "smtp",
                hint="check smtp_helo_name / myhostname",
                started=started,
            )
            raise _StageFailed("EHLO failed")
        if not after_tls:
            self.add(
                "smtp.ehlo",
                "smtp.ehlo",
                PASS,
                f"EHLO accepted; extensions: {' '.join(sorted(client.esmtp_features))}",
                "smtp",
                started=started,
                extensions=sorted(client.esmtp_features),
            )

    @staticmethod
    def send_starttls(client: _Client):
        """The one STARTTLS command of the probe: anything but 220 raises SMTPResponseException."""
        code, text = client.docmd("STARTTLS")
        if code != 220:
            raise smtplib.SMTPResponseException(code, text)
        # Nothing the relay sent before the handshake may be read as if it came through TLS (CVE-2011-0411).
        client.file = None

    def starttls(self, client: _Client, context, loose):
        spec = self.spec
        started = self.begin("tls.handshake", "STARTTLS")
        if not client.has_extn("starttls"):
            status = FAIL if spec.tls_required else WARN
            self.add(
                "tls.handshake",
                "tls.starttls_not_offered",
                status,
                "the relay does not offer STARTTLS",
                "tls",
                hint="at smtp_tls_security_level = may Postfix would send in clear; use a port with TLS",
                started=started,
            )
            if status == FAIL:
                raise _StageFailed("no STARTTLS")
            for stage, base_id in STAGES:
                if stage == "cert":
                    self.add(base_id, base_id, SKIP, "skipped: no TLS", stage)
            return
        try:
            self.send_starttls(client)
        except smtplib.SMTPResponseException as e:
            self.add(
                "tls.handshake",
                "tls.starttls_refused",
                FAIL,
                f"STARTTLS answered {e.smtp_code} {_reply_text(e.smtp_error)}",
                "tls",
                started=started,
            )
            raise _StageFailed("STARTTLS refused") from None
        client.sock = self.handshake(client.sock, context, loose, started)
        client.forget_ehlo()
        self.ehlo(client, after_tls=True)

    def handshake(self, sock, context, loose, started=None):
        started = time.monotonic() if started is None else started
        self.current = ("tls.handshake", "the TLS handshake", started)
        try:
            tls_sock = self.wrap(context, sock, self.sni())
        except ssl.SSLCertVerificationError as e:
            sock.close()
            if "tls.handshake" not in self.reported:
                self.record_untrusted(e)
            return self.reopen_unverified(loose)
        except StageTimeout:
            sock.close()
            raise  # tls.timeout, from run()
        except (ssl.SSLError, OSError, ValueError) as e:
            sock.close()
            text = str(e)
            if "WRONG_VERSION_NUMBER" in text.upper() or "wrong version number" in text:
                hint = "the port does not speak TLS right away: use tls=starttls / smtp_tls_wrappermode = no"
            else:
                hint = "compare smtp_tls_mandatory_protocols and ciphers with what the relay supports"
            self.add(
                "tls.handshake",
                "tls.handshake_failed",
                FAIL,
                f"TLS handshake failed: {text}",
                "tls",
                hint=hint,
                started=started,
            )
            raise _StageFailed("TLS handshake failed") from None
        if "tls.handshake" not in self.reported:
            self.record_tls(tls_sock, verified=context is not loose, started=started)
        return tls_sock

    def record_untrusted(self, error):
        reason = getattr(error, "verify_message", None) or str(error)
        self.result.tls["chain_error"] = reason
        self.add(
            "cert.chain",
            "cert.untrusted",
            self.severity(),
            f"the certificate does not verify against the CA: {reason}",
            "cert",
            hint="give the relay's CA in smtp_tls_CAfile / ca_file, or fix the relay's chain",
        )

    def reconnect_for_tls(self) -> socket.socket:
        """A new connection to the relay, ready for a TLS handshake: after greeting, EHLO and STARTTLS if starttls.

        Unrecorded (the first session reported those stages); each step is a stage on the clock. Raises OSError,
        smtplib.SMTPException or ProbeLimit.
        """
        spec = self.spec
        self.clock.start()
        sock = self.net.connect(self.result.address, spec.port, self.clock.remaining())
        if spec.tls != "starttls":
            return sock
        try:
            client = _Client(sock, self.clock, spec.ehlo_name)
            code, text = client.getreply()
            if code != 220:
                raise smtplib.SMTPResponseException(code, text)
            code, text = client.ehlo(spec.ehlo_name)
            if code != 250:
                raise smtplib.SMTPResponseException(code, text)
            self.send_starttls(client)
        except BaseException:
            sock.close()
            raise
        return sock

    def wrap(self, context, sock, sni: str | None) -> ssl.SSLSocket:
        """The TLS handshake as one stage: CPython bounds all of it by the socket timeout, not each read."""
        self.clock.start()
        try:
            sock.settimeout(self.clock.remaining())
            return context.wrap_socket(sock, server_hostname=sni)
        except TimeoutError:
            raise StageTimeout(self.clock.reason()) from None

    def reopen_unverified(self, loose):
        """After a failed verification, go on unverified to report what else there is to know."""
        try:
            sock = self.reconnect_for_tls()
        except (OSError, smtplib.SMTPException, ProbeLimit) as e:
            self.add(
                "tls.handshake", "tls.handshake_failed", FAIL, f"reconnecting without verification failed: {e}", "tls"
            )
            raise _StageFailed("TLS failed") from None
        return self.handshake(sock, loose, loose)

    def record_tls(self, tls_sock, verified: bool, started):
        spec = self.spec
        cipher = tls_sock.cipher()
        self.result.tls.update(
            {"version": tls_sock.version(), "cipher": cipher[0] if cipher else None, "sni": self.sni()}
        )
        self.add(
            "tls.handshake",
            "tls.handshake",
            PASS,
            f"{tls_sock.version()} with {cipher[0] if cipher else '?'}"
            f" ({'SNI ' + self.sni() if self.sni() else 'no SNI, like Postfix by default'})",
            "tls",
            started=started,
            version=tls_sock.version(),
        )
        der = tls_sock.getpeercert(binary_form=True)
        if not der:
            self.add("cert.chain", "cert.missing", FAIL, "the relay presented no certificate", "cert")
            return
        cert = certificate_summary(der, self.now())
        self.result.tls["certificate"] = cert
        if verified:
            self.result.tls["chain_verified"] = True
            self.add(
                "cert.chain",
                "cert.chain",
                PASS,
                f"the certificate for {cert['subject']} verifies against the CA",
                "cert",
            )
        elif "cert.chain" not in self.reported:
            self.result.tls["chain_verified"] = None
            status = UNKNOWN if spec.verify else SKIP
            self.add(
                "cert.chain",
                "cert.chain",
                status,
                "no CA given: the chain was not checked (Postfix does not check "
                "it below smtp_tls_security_level = verify)",
                "cert",
                hint="give ca_file to check it",
            )
        else:
            self.result.tls["chain_verified"] = False
        self.cert_name(cert)
        self.cert_expiry(cert)
        self.cert_sni(der, cert)

    def cert_name(self, cert: dict):
        spec = self.spec
        server = self.result.server or spec.host
        wanted = expected_names(spec.cert_match, server, spec.host)
        matched = names_match(cert, wanted)
        presented = ", ".join(cert["dns_names"] + cert["ip_addresses"]) or cert.get("subject") or "nothing"
        if matched:
            self.add("cert.name", "cert.name", PASS, f"the certificate names {matched} (presents {presented})", "cert")
        else:
            self.add(
                "cert.name",
                "cert.name_mismatch",
                self.severity(),
                f"the certificate names {presented}, not {' or '.join(wanted)} as Postfix expects",
                "cert",
                hint="use the relay name its certificate holds in relayhost, or fix the relay's certificate",
                expected=wanted,
                presented=cert["dns_names"] + cert["ip_addresses"],
            )

    def cert_expiry(self, cert: dict):
        days = cert["days_left"]
        if cert["expired"]:
            self.add(
                "cert.expiry",
                "cert.expired",
                self.severity(),
                f"the certificate expired on {cert['not_after']}",
                "cert",
                hint="the relay's operator must renew it",
                days_left=days,
            )
        elif days < EXPIRY_WARN_DAYS:
            self.add(
                "cert.expiry",
                "cert.expires_soon",
                WARN,
                f"the certificate expires in {days} days",
                "cert",
                hint="the relay's operator must renew it",
                days_left=days,
            )
        else:
            self.add(
                "cert.expiry",
                "cert.expiry",
                PASS,
                f"the certificate is valid for {days} more days",
                "cert",
                days_left=days,
            )

    def cert_sni(self, der: bytes, cert: dict):
        """Postfix sends SNI only when smtp_tls_servername is set: compare with what an SNI client gets."""
        spec = self.spec
        server = self.result.server or spec.host
        if spec.is_ip:
            self.add("cert.sni", "cert.sni", SKIP, "the relay is an IP address: no SNI to compare", "cert")
            return
        other_sni = None if self.sni() else server
        started = self.begin("cert.sni", "fetching the certificate a second time")
        try:
            other = self.fetch_certificate(other_sni)
        except (OSError, smtplib.SMTPException, ProbeLimit) as e:
            self.add(
                "cert.sni",
                "cert.sni",
                UNKNOWN,
                f"could not fetch the certificate a second time: {e}",
                "cert",
                started=started,
            )
            return
        label = "without SNI" if other_sni is None else f"with SNI {other_sni}"
        if other == der:
            self.add(
                "cert.sni",
                "cert.sni",
                PASS,
                f"the relay presents the same certificate {label}",
                "cert",
                started=started,
            )
            return
        other_cert = certificate_summary(other, self.now())
        self.result.tls["certificate_" + ("without_sni" if other_sni is None else "with_sni")] = other_cert
        wanted = expected_names(spec.cert_match, server, spec.host)
        if not self.sni() and names_match(other_cert, wanted) and not names_match(cert, wanted):
            self.add(
                "cert.sni",
                "cert.sni_differs",
                self.severity(),
                f"only with SNI {server} does the relay present a "
                f"certificate for {server}; Postfix sends no SNI by default",
                "cert",
                hint=f"set smtp_tls_servername = {server} (Postfix 3.4+)",
                started=started,
            )
        else:
            self.add(
                "cert.sni",
                "cert.sni_differs",
                WARN,
                f"the relay presents a different certificate {label} ({other_cert['subject']})",
                "cert",
                started=started,
            )

    def fetch_certificate(self, sni: str | None) -> bytes:
        _strict, loose = self.contexts()
        sock = self.reconnect_for_tls()
        with contextlib.closing(sock), self.wrap(loose, sock, sni) as tls_sock:
            return tls_sock.getpeercert(binary_form=True)

    def auth_stage(self, client: _Client):
        spec = self.spec
        offered = client.esmtp_features.get("auth", "").upper().split()
        tls_active = isinstance(client.sock, ssl.SSLSocket)
        permitted = list(spec.permitted(offered, tls_active)) if spec.permitted else list(offered)
        self.result.auth.update({"offered": offered, "permitted": permitted, "tls": tls_active, "authenticated": False})
        wanted = spec.expect_auth or bool(spec.username)
        if offered:
            self.add(
                "auth.mechanisms",
                "auth.mechanisms",
                PASS,
                f"the relay offers AUTH {' '.join(offered)}{' after TLS' if tls_active else ' without TLS'}",
                "auth",
                mechanisms=offered,
            )
        elif wanted:
            self.add(
                "auth.mechanisms",
                "auth.not_offered",
                FAIL,
                "the relay offers no AUTH on this connection",
                "auth",
                hint="some relays offer AUTH only after STARTTLS, or not at all on this port",
            )
        else:
            self.add(
                "auth.mechanisms",
                "auth.mechanisms",
                PASS,
                "the relay offers no AUTH (it admits hosts by address)",
                "auth",
                mechanisms=[],
            )
        if not (spec.username and spec.password is not None):
            self.add("auth.login", "auth.login", SKIP, "no credentials given: AUTH not tried", "auth")
            return
        if not offered:
            self.add("auth.login", "auth.login", SKIP, "skipped: no AUTH offered", "auth")
            return
        usable = [m for m in permitted if m in ("PLAIN", "LOGIN", "CRAM-MD5")]
        if not usable:
            self.add(
                "auth.login",
                "auth.login",
                SKIP,
                f"no mechanism Postfix would use among {' '.join(offered)} (see sasl.no_worthy_mechs)",
                "auth",
            )
            return
        mechanism = usable[0]
        client.user, client.password = spec.username, spec.password
        started = self.begin("auth.login", f"AUTH {mechanism}")
        method = getattr(client, "auth_" + mechanism.lower().replace("-", "_"))
        try:
            code, text = client.auth(mechanism, method, initial_response_ok=True)
        except ProbeLimit:
            raise  # auth.timeout / auth.reply_too_large, from run()
        except smtplib.SMTPAuthenticationError as e:
            self.add(
                "auth.login",
                "auth.rejected",
                FAIL,
                f"the relay rejected the credentials with {mechanism}: {e.smtp_code} {_reply_text(e.smtp_error)}",
                "auth",
                hint="check the user name and password (or API key) in the SASL map",
                started=started,
            )
            return
        except (OSError, smtplib.SMTPException, ValueError) as e:
            # ValueError: a challenge that is not base64 (binascii.Error).
            self.add("auth.login", "auth.error", FAIL, f"AUTH {mechanism} failed: {e}", "auth", started=started)
            return
        finally:
            client.password = None
        self.result.auth.update({"authenticated": True, "mechanism": mechanism})
        self.add(
            "auth.login",
            "auth.login",
            PASS,
            f"authenticated with {mechanism}: {code} {_reply_text(text)}",
            "auth",
            started=started,
        )

    def envelope(self, client: _Client):
        spec = self.spec
        if not spec.mail_from:
            return
        started = self.begin("envelope.mail_from", "MAIL FROM")
        # Non-ASCII addresses need SMTPUTF8 (RFC 6531), asked for on MAIL FROM whichever address needs it.
        utf8 = not all(address.isascii() for address in (spec.mail_from, *spec.rcpt_to))
        options = ["SMTPUTF8"] if utf8 and client.has_extn("smtputf8") else []
        if not spec.mail_from.isascii() and not options:
            self.smtputf8_missing("envelope.mail_from", [spec.mail_from], started)
            raise _StageFailed("the sender needs SMTPUTF8")
        code, text = client.mail(spec.mail_from, options)
        if code != 250:
            hint = (
                "the relay wants AUTH first: configure credentials"
                if code == 530
                else "the relay does not accept this sender: use an address in an approved domain"
            )
            self.add(
                "envelope.mail_from",
                "envelope.sender_rejected",
                FAIL,
                f"MAIL FROM:<{spec.mail_from}> answered {code} {_reply_text(text)}",
                "envelope",
                hint=hint,
                started=started,
            )
            raise _StageFailed("sender rejected")
        self.add(
            "envelope.mail_from",
            "envelope.mail_from",
            PASS,
            f"MAIL FROM:<{spec.mail_from}> accepted",
            "envelope",
            started=started,
        )
        if not spec.rcpt_to:
            client.rset()
            return
        started = self.begin("envelope.rcpt_to", "RCPT TO")
        if utf8 and not options:
            self.smtputf8_missing("envelope.rcpt_to", [r for r in spec.rcpt_to if not r.isascii()], started)
            client.rset()
            raise _StageFailed("a recipient needs SMTPUTF8")
        refused = []
        for rcpt in spec.rcpt_to:
            code, text = client.rcpt(rcpt)
            if code not in (250, 251):
                refused.append(f"<{rcpt}>: {code} {_reply_text(text)}")
        if refused:
            self.add(
                "envelope.rcpt_to",
                "envelope.recipient_rejected",
                FAIL,
                "RCPT TO refused " + "; ".join(refused),
                "envelope",
                hint="the relay does not accept these recipients from this host/sender",
                started=started,
            )
            client.rset()
            raise _StageFailed("recipient rejected")
        self.add(
            "envelope.rcpt_to",
            "envelope.rcpt_to",
            PASS,
            f"RCPT TO {', '.join(spec.rcpt_to)} accepted",
            "envelope",
            started=started,
        )
        if not spec.send_test:
            client.rset()
        elif spec.check_mode:
            client.rset()
            self.add("message.sent", "message.sent", SKIP, "test message not sent in check mode", "message")
        else:
            self.send(client, smtputf8=bool(options))

    def smtputf8_missing(self, base_id: str, addresses: list[str], started: float):
        self.add(
            base_id,
            "envelope.smtputf8_required",
            FAIL,
            f"{', '.join(addresses)}: not ASCII, and the relay does not offer SMTPUTF8",
            "envelope",
            hint="use an ASCII address (IDNA form for the domain), or a relay that offers SMTPUTF8",
            started=started,
        )

    def send(self, client: _Client, smtputf8: bool = False):
        spec = self.spec
        msg = email.message.EmailMessage()
        msg["From"] = spec.mail_from
        msg["To"] = ", ".join(spec.rcpt_to)
        msg["Subject"] = spec.subject
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = email.utils.make_msgid(domain=spec.ehlo_name if "." in spec.ehlo_name else None)
        msg["X-Mailer"] = "smtp.relay.relay_check"
        msg.set_content(spec.body)
        started = self.begin("message.sent", "DATA")
        try:
            code, text = client.data(msg.as_bytes(policy=msg.policy.clone(utf8=True)) if smtputf8 else msg.as_bytes())
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        text = _reply_text(text)
        if code != 250:
            self.add(
                "message.sent",
                "message.rejected",
                FAIL,
                f"the relay refused the message: {code} {text}",
                "message",
                started=started,
            )
            return
        match = _QUEUE_ID.search(text)
        self.result.queue_id = match.group(1) if match else text
        self.add(
            "message.sent",
            "message.sent",
            PASS,
            f"the relay accepted the test message: {code} {text}",
            "message",
            started=started,
            queue_id=self.result.queue_id,
            message_id=msg["Message-ID"],
        )


def probe(spec: ProbeSpec, network: Network | None = None) -> ProbeResult:
    """Run every stage against the relay; never raises for what the relay does, only reports it."""
    return Probe(spec, network).run()
