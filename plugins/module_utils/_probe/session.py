# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: one SMTP client session on a socket the probe opened, every exchange bounded.

A small client of its own rather than ``smtplib``: smtplib opens its sockets itself, reads replies through
``sock.makefile`` (whose every read restarts the socket timeout, so a relay dripping one byte a second never times
out) and keeps a reply of any number of lines. Here:

- Time: each command with its whole (multi-line) reply, the greeting and the TLS handshake are each one stage of the
  ``Clock``: a stage has ``timeout`` seconds, all of them together ``PROBE_DEADLINE_FACTOR`` (6) x ``timeout``;
  every read and write waits only until the stage's deadline, and overrunning it raises ``StageTimeout``.
- Size: one reply is at most ``MAX_REPLY_BYTES`` (64 KiB) in all and ``MAX_LINE_BYTES`` (8 KiB) per line; a larger
  one raises ``ReplyTooLarge`` without being held in memory.
- TLS: the one STARTTLS (``SmtpSession.starttls``) checks the 220 before any handshake, then drops whatever the relay
  sent before it (CVE-2011-0411) and what its EHLO said (RFC 3207).
- Text: commands go out as UTF-8 (the stages send non-ASCII addresses only with SMTPUTF8), user names and passwords
  too (RFC 4616; what Cyrus SASL sends for Postfix). A command with a line break in it is refused (ValueError).
"""

from __future__ import annotations

import base64
import hmac
import re
import ssl
import time
from dataclasses import dataclass

PROBE_DEADLINE_FACTOR = 6  # the whole probe ends within this many times the stage timeout
MAX_REPLY_BYTES = 64 * 1024  # one SMTP reply, all its lines together
MAX_LINE_BYTES = 8192  # one reply line, as smtplib (and RFC 5321's 512 with plenty of room)
MAX_AUTH_CHALLENGES = 5
AUTH_MECHANISMS = ("PLAIN", "LOGIN", "CRAM-MD5")

_FEATURE = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)[ =]?(.*)")
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


class ProbeLimit(Exception):
    """The relay overran one of the probe's bounds; ``kind`` ends the failed check's id (``tls.timeout``)."""

    kind = "limit"


class StageTimeout(ProbeLimit):
    kind = "timeout"


class ReplyTooLarge(ProbeLimit):
    kind = "reply_too_large"


class SmtpError(Exception):
    """The relay hung up, or answered something the session cannot go on with."""


class UnexpectedReply(SmtpError):
    """``what`` (a command, or the greeting) got ``reply``, not the code the session needs to go on."""

    def __init__(self, what: str, reply: Reply):
        super().__init__(f"{what} answered {reply.code} {reply.text}")
        self.what = what
        self.reply = reply


class AuthRejected(UnexpectedReply):
    """AUTH ended with a code other than 235 (or 503, already authenticated)."""


class Clock:
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


@dataclass(frozen=True)
class Reply:
    """One SMTP reply: its code (-1 when it does not start with three digits: not SMTP) and the text of its lines."""

    code: int
    lines: tuple = ()

    @property
    def text(self) -> str:
        """The lines on one line, at most 300 characters: for messages."""
        return " ".join(" ".join(self.lines).split())[:300]


def tls_wrap(context: ssl.SSLContext, sock, server_hostname: str | None, clock: Clock) -> ssl.SSLSocket:
    """The TLS handshake as one stage: CPython bounds all of it by the socket timeout, not each read."""
    clock.start()
    try:
        sock.settimeout(clock.remaining())
        return context.wrap_socket(sock, server_hostname=server_hostname)
    except TimeoutError:
        raise StageTimeout(clock.reason()) from None


def _auth_answer(mechanism: str, user: str, password: str, challenge: bytes | None) -> str | None:
    """What to send to a challenge; ``challenge`` None asks for the initial response (None: the mechanism has none)."""
    if mechanism == "PLAIN":
        return f"\0{user}\0{password}"
    if mechanism == "LOGIN":
        return user if challenge is None else password
    if challenge is None:  # CRAM-MD5 starts with the relay's challenge
        return None
    return user + " " + hmac.HMAC(password.encode(), challenge, "md5").hexdigest()


def _features(lines) -> dict[str, str]:
    """EHLO reply lines after the first -> {keyword in lower case: parameters}."""
    features: dict[str, str] = {}
    for line in lines:
        match = _FEATURE.fullmatch(line)
        if not match:
            continue
        keyword, params = match.group(1).lower(), match.group(2).strip()
        if keyword == "auth" and keyword in features:
            # AUTH may come twice (AUTH and the old AUTH= that Postfix adds for broken clients): both count.
            params = f"{features[keyword]} {params}"
        features[keyword] = params
    return features


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _message_data(payload: bytes) -> bytes:
    """The message as DATA sends it: CRLF line ends, leading dots doubled (RFC 5321 4.5.2), then the end mark."""
    data = re.sub(rb"(?m)^\.", b"..", _LINE_ENDS.sub(b"\r\n", payload))
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpSession:
    """One SMTP client session on ``sock``: a command and its reply, or the greeting, or a handshake, is one stage."""

    def __init__(self, sock, clock: Clock):
        self.sock = sock
        self.clock = clock
        self.features: dict[str, str] = {}  # EHLO keywords (lower case) -> parameters
        self.closed = False
        self._buffer = bytearray()

    # -- the wire --------------------------------------------------------------------------------
    def _send(self, data: bytes):
        self.clock.start()
        self.sock.settimeout(self.clock.remaining())
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise StageTimeout(self.clock.reason()) from None

    def _recv(self) -> bytes:
        self.sock.settimeout(self.clock.remaining())
        try:
            return self.sock.recv(4096)
        except TimeoutError:
            raise StageTimeout(self.clock.reason()) from None

    def _readline(self) -> bytes:
        """One line of at most ``MAX_LINE_BYTES``, its line end included; b"" when the relay has hung up."""
        while True:
            newline = self._buffer.find(b"\n", 0, MAX_LINE_BYTES)
            if newline >= 0:
                end = newline + 1
                break
            if len(self._buffer) >= MAX_LINE_BYTES:
                raise ReplyTooLarge(f"a reply line longer than {MAX_LINE_BYTES} bytes")
            chunk = self._recv()
            if not chunk:
                end = len(self._buffer)  # the relay hung up: what came is the last (maybe partial) line
                break
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[:end]
        return line

    def read_reply(self) -> Reply:
        """The next reply, all its lines, within the current stage."""
        budget = MAX_REPLY_BYTES
        lines = []
        while True:
            line = self._readline()
            if not line:
                raise SmtpError("the connection closed")
            budget -= len(line)
            if budget < 0:
                raise ReplyTooLarge(f"a reply longer than {MAX_REPLY_BYTES // 1024} KiB")
            code = line[:3]
            if not (code.isdigit() and len(code) == 3):
                return Reply(-1, (line.strip().decode("utf-8", "replace"),))
            lines.append(line[4:].strip(b" \t\r\n").decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return Reply(int(code), tuple(lines))

    def command(self, line: str) -> Reply:
        if "\r" in line or "\n" in line:
            raise ValueError("an SMTP command must be one line")
        self._send(line.encode() + b"\r\n")
        return self.read_reply()

    # -- SMTP ------------------------------------------------------------------------------------
    def greeting(self) -> Reply:
        self.clock.start()
        return self.read_reply()

    def ehlo(self, name: str) -> Reply:
        reply = self.command(f"EHLO {name}")
        self.features = _features(reply.lines[1:]) if reply.code == 250 else {}
        return reply

    def has_extn(self, keyword: str) -> bool:
        return keyword.lower() in self.features

    def auth_mechanisms(self) -> list[str]:
        return list(dict.fromkeys(self.features.get("auth", "").upper().split()))

    @property
    def tls_active(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket)

    def start_tls(self, context: ssl.SSLContext, server_hostname: str | None):
        """The TLS handshake on this connection (implicit TLS: before the greeting)."""
        self.sock = tls_wrap(context, self.sock, server_hostname, self.clock)

    def starttls(self, context: ssl.SSLContext, server_hostname: str | None):
        """STARTTLS: UnexpectedReply unless the relay answers 220, then the handshake; the EHLO must be sent again."""
        reply = self.command("STARTTLS")
        if reply.code != 220:
            raise UnexpectedReply("STARTTLS", reply)
        self._buffer.clear()  # nothing sent before the handshake may be read as if it came through TLS
        self.features = {}
        self.start_tls(context, server_hostname)

    def auth(self, mechanism: str, user: str, password: str) -> Reply:
        """AUTH with PLAIN, LOGIN or CRAM-MD5: the final reply (235, or 503: already authenticated), else AuthRejected.

        A challenge that is not base64 raises ValueError (binascii.Error).
        """
        mechanism = mechanism.upper()
        if mechanism not in AUTH_MECHANISMS:
            raise ValueError(f"AUTH {mechanism} is not a mechanism this probe speaks")
        initial = _auth_answer(mechanism, user, password, None)
        reply = self.command(f"AUTH {mechanism}" + ("" if initial is None else f" {_b64(initial)}"))
        challenges = 0
        while reply.code == 334:
            challenges += 1
            if challenges > MAX_AUTH_CHALLENGES:
                raise SmtpError(f"AUTH {mechanism}: the relay keeps sending challenges")
            challenge = base64.b64decode("".join(reply.lines), validate=True)
            reply = self.command(_b64(_auth_answer(mechanism, user, password, challenge)))
        if reply.code in (235, 503):
            return reply
        raise AuthRejected(f"AUTH {mechanism}", reply)

    def mail(self, sender: str, options=()) -> Reply:
        return self.command(f"MAIL FROM:<{sender}>" + "".join(f" {o}" for o in options))

    def rcpt(self, recipient: str) -> Reply:
        return self.command(f"RCPT TO:<{recipient}>")

    def rset(self) -> Reply:
        return self.command("RSET")

    def data(self, payload: bytes) -> Reply:
        """DATA and the message: the reply refusing DATA, or the one to the message."""
        reply = self.command("DATA")
        if reply.code != 354:
            return reply
        self._send(_message_data(payload))
        return self.read_reply()

    def quit(self):
        """QUIT (bounded like any command), then close, whatever happens."""
        try:
            self.command("QUIT")
        finally:
            self.close()

    def close(self):
        self.closed = True
        self._buffer.clear()
        self.sock.close()
