# SPDX-License-Identifier: GPL-3.0-or-later
"""A hostile DNS server on 127.0.0.1, for proving that every DNS-using module stays bounded and says ``unknown``.

    with HostileDNS("silent") as server:
        check_senders({"domains": ["sender-ok.org"], "nameservers": server.nameservers,
                       "dns_port": server.port, "timeout": 0.4})

dnspython parses the questions and builds the answers; threads serve UDP and TCP on one ephemeral port of
127.0.0.1 only. Every question is recorded in ``server.queries`` as ``(transport, name, type)``.

Modes (``MODES``):

- ``good``: answers from ``zone`` (``{(name, type): [rdata text, ...]}``): the records, NODATA for a known name
  without that type, NXDOMAIN for a name not in the zone. An answer too large for the client's UDP size comes with
  the TC bit, and in full over TCP.
- ``silent``: reads every question and never answers (over TCP: holds the connection open without a word).
- ``refused`` / ``servfail``: every answer has that rcode, over UDP and TCP.
- ``truncated``: every UDP answer has the TC bit and no records; over TCP the connection is closed at once
  (``tcp=False``: no TCP listener at all, the connection is refused).
- ``lying``: three lies per UDP question, in this order: an answer with another id, an answer to another
  question, then an answer with the right id and question whose answer section holds only records of other
  types and other names (over TCP only the last). Every lie carries data a believing client would show
  (``LIE_MARKERS``): an MX to ``LIE_HOST``, ``v=spf1 +all``, the address ``LIE_ADDRESS``.
- ``garbage``: over UDP, random bytes (invalid UTF-8 included), then a datagram with the right id and question,
  the TC bit, and bytes that are no DNS records; over TCP, a length-prefixed message of such bytes.
- ``huge``: answers too large for UDP (so over TCP after a truncated UDP answer): a TXT record of
  ``huge_bytes`` (about 60 KB, near the most one DNS message holds) in 255-byte strings with bytes that are not
  UTF-8, its SPF-like or DMARC-like numbers written in Arabic-Indic digits; ``huge_bytes // 600`` (100) MX, A,
  AAAA or PTR records, the MX exchanges named with bytes that are neither ASCII nor UTF-8.
- ``slow``: as ``good``, but each answer leaves ``delay`` seconds late (longer than the client's timeout).

``mode`` may be changed while the server runs: a test's watchdog switches a run that overran its bound to
``refused``, so that the client ends at once instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
from dns.rdtypes.ANY.MX import MX
from dns.rdtypes.ANY.PTR import PTR
from dns.rdtypes.ANY.TXT import TXT
from dns.rdtypes.IN.A import A
from dns.rdtypes.IN.AAAA import AAAA

HOST = "127.0.0.1"
MODES = ("good", "silent", "refused", "servfail", "truncated", "lying", "garbage", "huge", "slow")
LIE_HOST = "lie-mx.hostile.invalid"
LIE_ADDRESS = "192.0.2.66"
LIE_MARKERS = ("lie-", LIE_ADDRESS, "+all")
# Neither a DNS message nor UTF-8: NULs, control bytes, bad lead bytes, lone continuation bytes.
GARBAGE = b"\xff\xfe\xfd\x00 garbage \x80\x81\xc3\x28 not DNS \xf0\x28\x8c\xbc\x16\x03\x01\x00\x01\xff"
# In TXT strings: bytes that are not UTF-8 (a bad lead byte, a lone lead, a cut sequence), NUL and DEL.
JUNK = b"\xff\xc3\x28 \xe2\x82" + "é€".encode() + b"\x00\x7f"
ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
UDP_PLAIN_SIZE = 512  # RFC 1035: the most a client without EDNS takes over UDP
TTL = 300


def _name(text: str) -> str:
    return text.strip().rstrip(".").lower()


class HostileDNS:
    """A context manager: ``with HostileDNS(mode) as server:`` serves on ``server.port`` of 127.0.0.1."""

    def __init__(self, mode: str = "good", zone=None, *, delay: float = 1.0, tcp: bool = True,
                 huge_bytes: int = 60000, seed: int = 7):  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(MODES)}")
        self.mode, self.delay, self.tcp, self.huge_bytes = mode, delay, tcp, huge_bytes
        self.zone = {(_name(name), rdtype.upper()): list(values) for (name, rdtype), values in (zone or {}).items()}
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.queries: list[tuple[str, str, str]] = []  # (udp|tcp, name, type) of every question received
        self.errors: list[str] = []  # unexpected server-side exceptions (a test asserts there are none)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._connections: list[socket.socket] = []
        self._huge_cache: dict = {}
        self.udp: socket.socket | None = None
        self.listener: socket.socket | None = None
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> HostileDNS:
        self.udp, self.listener = self._bind()
        self.port = self.udp.getsockname()[1]
        self._spawn(self._serve_udp)
        if self.listener is not None:
            self._spawn(self._accept)
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        """Stop serving; the sockets are closed (idempotent)."""
        self.stop.set()
        for thread in self._threads[:2]:  # the UDP loop and the accept loop: nothing new starts after them
            thread.join(timeout=5)
        with self._lock:
            connections = list(self._connections)
        for sock in [self.udp, self.listener, *connections]:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
        for thread in list(self._threads):
            thread.join(timeout=5)

    @property
    def nameservers(self) -> list[str]:
        return [HOST]

    def asked(self, name: str | None = None) -> list[tuple[str, str]]:
        """(name, type) of the questions received, in order, without repeats; only those for ``name`` if given."""
        seen = dict.fromkeys((n, t) for _transport, n, t in list(self.queries))
        return [q for q in seen if name is None or q[0] == _name(name)]

    def _bind(self):
        """A UDP socket and, unless ``tcp=False``, a TCP listener on the same free port of 127.0.0.1."""
        for _attempt in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind((HOST, 0))
            udp.settimeout(0.1)
            if not self.tcp:
                return udp, None
            try:
                listener = socket.create_server((HOST, udp.getsockname()[1]))
            except OSError:  # the port is taken for TCP by someone else: another pair
                udp.close()
                continue
            listener.settimeout(0.1)
            return udp, listener
        raise OSError("no free port for UDP and TCP on 127.0.0.1")

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True, name=f"hostile-dns-{self.mode}")
        self._threads.append(thread)
        thread.start()

    def _guarded(self, work, *args):
        try:
            work(*args)
        except OSError:
            pass  # the client left or the server stops: part of the game
        except Exception as e:  # recorded for the test to see; a server thread never raises
            self.errors.append(f"{type(e).__name__}: {e}")

    # -- transports --------------------------------------------------------------------------------
    def _serve_udp(self):
        while not self.stop.is_set():
            try:
                data, peer = self.udp.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            query = self._parse(data, "udp")
            if query is None or self.mode == "silent":
                continue
            if self.mode == "slow":
                self._spawn(self._guarded, self._answer_late, query, peer)
            else:
                self._guarded(self._answer_udp, query, peer)

    def _answer_late(self, query, peer):
        if not self.stop.wait(self.delay):
            self._answer_udp(query, peer)

    def _answer_udp(self, query, peer):
        for datagram in self._udp_replies(query):
            self.udp.sendto(datagram, peer)

    def _accept(self):
        while not self.stop.is_set():
            try:
                sock, _peer = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "truncated":
                sock.close()  # the answer is "too large for UDP", and TCP goes away at once
                continue
            with self._lock:
                self._connections.append(sock)
            self._spawn(self._guarded, self._serve_tcp, sock)

    def _serve_tcp(self, sock: socket.socket):
        sock.settimeout(0.1)
        stream = bytearray()
        while not self.stop.is_set():
            try:
                chunk = sock.recv(65535)
            except TimeoutError:
                continue
            if not chunk:
                return
            stream += chunk
            while len(stream) >= 2 and len(stream) >= 2 + struct.unpack("!H", stream[:2])[0]:
                size = struct.unpack("!H", stream[:2])[0]
                data, stream = bytes(stream[2 : 2 + size]), stream[2 + size :]
                query = self._parse(data, "tcp")
                if query is None or self.mode == "silent":
                    continue
                if self.mode == "slow" and self.stop.wait(self.delay):
                    return
                reply = self._tcp_reply(query)
                sock.sendall(struct.pack("!H", len(reply)) + reply)

    def _parse(self, data: bytes, transport: str):
        try:
            query = dns.message.from_wire(data)
        except Exception:  # not a question: nothing to answer
            self.queries.append((transport, "<unparseable>", "?"))
            return None
        if not query.question:
            return None
        question = query.question[0]
        self.queries.append((transport, _name(question.name.to_text()), dns.rdatatype.to_text(question.rdtype)))
        return query

    # -- answers -----------------------------------------------------------------------------------
    def _udp_replies(self, query) -> list[bytes]:
        mode = self.mode
        if mode == "lying":
            return [self._lie_other_id(query), self._lie_other_question(query), self._lie_records(query).to_wire()]
        if mode == "garbage":
            noise = bytes(self.random.getrandbits(8) for _unused in range(64)) + GARBAGE
            return [noise, self._garbage_after_header(query, truncated=True)]
        if mode == "truncated":
            return [self._truncated(query)]
        wire = self._huge_wire(query) if mode == "huge" else self._response(query).to_wire(max_size=65535)
        limit = query.payload if query.edns >= 0 else UDP_PLAIN_SIZE
        return [wire if len(wire) <= limit else self._truncated(query)]

    def _tcp_reply(self, query) -> bytes:
        if self.mode == "lying":
            return self._lie_records(query).to_wire()
        if self.mode == "garbage":
            return self._garbage_after_header(query, truncated=False)
        if self.mode == "huge":
            return self._huge_wire(query)
        return self._response(query).to_wire(max_size=65535)

    def _response(self, query):
        """The answer of modes good, slow, refused and servfail."""
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        if self.mode in ("refused", "servfail"):
            response.set_rcode(dns.rcode.REFUSED if self.mode == "refused" else dns.rcode.SERVFAIL)
            return response
        question = query.question[0]
        name, rdtype = _name(question.name.to_text()), dns.rdatatype.to_text(question.rdtype)
        values = self.zone.get((name, rdtype))
        if values:
            response.answer.append(dns.rrset.from_text_list(question.name, TTL, "IN", rdtype, values))
        elif not any(known == name for known, _type in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def _truncated(self, query) -> bytes:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.TC
        return response.to_wire()

    def _garbage_after_header(self, query, truncated: bool) -> bytes:
        """A header and question the client takes for its answer, then bytes that are no records at all."""
        response = dns.message.make_response(query)
        if truncated:
            response.flags |= dns.flags.TC
        head = bytearray(response.to_wire())
        head[6:8] = struct.pack("!H", 3)  # ANCOUNT: three records follow, says the header
        return bytes(head) + GARBAGE * 3

    # -- lies --------------------------------------------------------------------------------------
    def _believable(self, qname, rdtype: int) -> list[dns.rrset.RRset]:
        """What a believing client would take from a lie: records of the asked type, with the lie markers."""
        text = {
            dns.rdatatype.MX: [f"10 {LIE_HOST}."],
            dns.rdatatype.TXT: ['"v=spf1 +all"', '"v=DMARC1; p=none; rua=mailto:lie-report@hostile.invalid"'],
            dns.rdatatype.A: [LIE_ADDRESS],
            dns.rdatatype.AAAA: ["2001:db8::66"],
            dns.rdatatype.PTR: ["lie-ptr.hostile.invalid."],
        }.get(rdtype, [f"lie-target.{LIE_HOST}."] if rdtype in (dns.rdatatype.CNAME, dns.rdatatype.NS) else None)
        if text is None:
            return []
        return [dns.rrset.from_text_list(qname, TTL, "IN", rdtype, text)]

    def _lie_other_id(self, query) -> bytes:
        response = dns.message.make_response(query)
        response.answer.extend(self._believable(query.question[0].name, query.question[0].rdtype))
        response.id = (query.id + 1) & 0xFFFF
        return response.to_wire()

    def _lie_other_question(self, query) -> bytes:
        question = query.question[0]
        other = dns.name.from_text("lie-other-question.hostile.invalid.")
        lie = dns.message.make_query(other, question.rdtype)
        lie.id = query.id
        response = dns.message.make_response(lie)
        response.answer.extend(self._believable(other, question.rdtype))
        response.answer.extend(self._believable(question.name, question.rdtype))
        return response.to_wire()

    def _lie_records(self, query):
        """Right id, right question; the answer holds records of other types at the name, and others elsewhere."""
        question = query.question[0]
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        other_type = dns.rdatatype.TXT if question.rdtype != dns.rdatatype.TXT else dns.rdatatype.MX
        response.answer.extend(self._believable(question.name, other_type))
        elsewhere = dns.name.from_text("lie-elsewhere.hostile.invalid.")
        response.answer.extend(self._believable(elsewhere, question.rdtype))
        return response

    # -- huge --------------------------------------------------------------------------------------
    def _huge_wire(self, query) -> bytes:
        """The whole answer, assembled from records encoded once per type (dnspython's own RRset building compares
        every record with every other: seconds for a few hundred under tracemalloc, which the tests run)."""
        question = query.question[0]
        name = _name(question.name.to_text())
        kind = "dmarc" if name.startswith("_dmarc.") else "dkim" if "._domainkey." in name else "other"
        key = (question.rdtype, kind if question.rdtype == dns.rdatatype.TXT else None)
        if key not in self._huge_cache:
            self._huge_cache[key] = self._huge_records(question.rdtype, kind)
        records = self._huge_cache[key]
        flags = dns.flags.QR | dns.flags.AA | (query.flags & dns.flags.RD)
        rcode = dns.rcode.NOERROR if records else dns.rcode.NXDOMAIN
        header = struct.pack("!HHHHHH", query.id, flags | rcode, 1, len(records), 0, 0)
        wire = header + question.name.to_wire() + struct.pack("!HH", question.rdtype, question.rdclass)
        # Each record's owner is a pointer to the question's name (offset 12); rdata names are not compressed.
        return wire + b"".join(records)

    def _huge_records(self, rdtype: int, kind: str) -> list[bytes]:
        """The answer records of the huge mode, in wire form."""
        return [
            b"\xc0\x0c" + struct.pack("!HHIH", rdtype, dns.rdataclass.IN, TTL, len(data)) + data
            for data in (rdata.to_wire() for rdata in self._huge_rdatas(rdtype, kind))
        ]

    def _huge_rdatas(self, rdtype: int, kind: str) -> list:
        budget, IN = self.huge_bytes, dns.rdataclass.IN
        if rdtype == dns.rdatatype.TXT:
            return [TXT(IN, rdtype, _huge_strings(kind, budget))]
        if rdtype == dns.rdatatype.MX:
            # Exchanges with a 63-byte label of bytes that are neither ASCII nor UTF-8.
            label = b"\xff\xfe" + b"x" * 59 + b"\xc3\x28"
            return [MX(IN, rdtype, i, dns.name.Name([f"h{i}".encode(), label, b"hostile", b"invalid", b""]))
                    for i in range(budget // 600)]  # fmt: skip
        if rdtype == dns.rdatatype.A:
            return [A(IN, rdtype, f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}") for i in range(budget // 600)]
        if rdtype == dns.rdatatype.AAAA:
            return [AAAA(IN, rdtype, f"fd00::{i:x}") for i in range(budget // 600)]
        if rdtype == dns.rdatatype.PTR:
            suffix = dns.name.from_text(f"{'p' * 60}.hostile.invalid.")
            return [
                PTR(IN, rdtype, dns.name.Name([f"h{i}".encode()]).concatenate(suffix)) for i in range(budget // 600)
            ]
        return []


def _huge_strings(kind: str, budget: int) -> list[bytes]:
    """One TXT record's 255-byte strings: tag values in Arabic-Indic digits, then bytes that are not all UTF-8."""
    filler = b"x" * 200 + JUNK * 10
    if kind == "dmarc":
        head = "v=DMARC1; p=reject; pct=" + "100".translate(ARABIC_DIGITS)
        filler = b"; x=" + filler  # more tags, well formed but for their bytes
    elif kind == "dkim":
        head = "v=DKIM1; k=rsa; t=y; p="
    else:
        head = "v=spf1 ip4:" + "192.0.2.0/24".translate(ARABIC_DIGITS) + " "
    strings = [head.encode()]
    while sum(len(s) + 1 for s in strings) < budget - 300:
        strings.append(filler[:255])
    return strings
