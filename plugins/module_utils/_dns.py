# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: DNS resolver wrapper: backend seam, per-run cache, deadlines, bounded pool.

Every answer is an ``Answer`` whose ``status`` tells apart a name that does not exist (``nxdomain``), a name
without data of that type (``nodata``) and a question nobody answered (``timeout``/``error``): checks must report the
last ones as ``unknown``, never as pass or fail.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import int_option, number_option, shown
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._optional import OptionalLibrary

# The collection's one import of dnspython: other module_utils use ``dns`` and ``DNSPYTHON`` from here.
try:
    import dns.exception
    import dns.name
    import dns.rdatatype
    import dns.resolver
    import dns.reversename
except ImportError:  # pragma: no cover - depends on the host
    dns = None
    DNSPYTHON = OptionalLibrary.missing("dnspython", "python3-dnspython")
else:
    DNSPYTHON = OptionalLibrary.found("dnspython", "python3-dnspython")

OK = "ok"
NXDOMAIN = "nxdomain"
NODATA = "nodata"
TIMEOUT = "timeout"
ERROR = "error"
INVALID = "invalid"

MAX_CNAME_CHAIN = 8
SUPPORTED_TYPES = ("A", "AAAA", "MX", "TXT", "CNAME", "PTR", "NS", "SPF")


@dataclass(frozen=True)
class Answer:
    """One question's outcome; ``records`` are plain values (see ``rdata_value``), ``cnames`` the chain followed."""

    name: str
    rdtype: str
    status: str
    records: tuple = ()
    cnames: tuple = ()
    error: str | None = None

    @property
    def answered(self) -> bool:
        """True when the DNS gave a definite answer (data, no data or no such name)."""
        return self.status in (OK, NODATA, NXDOMAIN, INVALID)

    @property
    def empty(self) -> bool:
        return self.answered and not self.records

    def texts(self) -> list[str]:
        """TXT records as text: the strings of one record joined, undecodable bytes replaced."""
        return [b"".join(r).decode("utf-8", "replace") for r in self.records]


def normalize_name(name: str) -> str:
    return name.strip().rstrip(".").lower()


def rdata_value(rdata, rdtype: str):
    """Plain Python value for one dnspython rdata, the shape pyspf's DNS drivers hand on."""
    if rdtype in ("A", "AAAA"):
        return rdata.address
    if rdtype == "MX":
        return (rdata.preference, rdata.exchange.to_text(omit_final_dot=True))
    if rdtype in ("TXT", "SPF"):
        return tuple(rdata.strings)
    return rdata.target.to_text(omit_final_dot=True)


class DnspythonBackend:
    """Ask real servers through dnspython: the given nameservers (and port), or the system's resolv.conf."""

    def __init__(self, nameservers=None, port: int = 53):
        DNSPYTHON.require("to query DNS")
        self.nameservers = list(nameservers or [])
        self.port = port
        # dnspython Resolver objects keep mutable state: one per worker thread.
        self._local = threading.local()

    def _resolver(self):
        res = getattr(self._local, "resolver", None)
        if res is None:
            res = dns.resolver.Resolver(configure=not self.nameservers)
            if self.nameservers:
                res.nameservers = self.nameservers
                res.port = self.port
            # Retrying a server that just said SERVFAIL only burns the deadline.
            res.retry_servfail = False
            self._local.resolver = res
        return res

    def lookup(self, name: str, rdtype: str, timeout: float) -> Answer:
        try:
            # Without nameservers this reads resolv.conf, which a host (or a container) may not have.
            res = self._resolver()
            res.timeout = timeout
            ans = res.resolve(name, rdtype, search=False, raise_on_no_answer=False, lifetime=timeout)
        except dns.resolver.NXDOMAIN:
            return Answer(name, rdtype, NXDOMAIN)
        except dns.exception.Timeout as exc:
            return Answer(name, rdtype, TIMEOUT, error=str(exc))
        except dns.resolver.NoNameservers as exc:
            return Answer(name, rdtype, ERROR, error=str(exc))
        except (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel) as exc:
            return Answer(name, rdtype, INVALID, error=str(exc))
        except dns.exception.DNSException as exc:
            return Answer(name, rdtype, ERROR, error=f"{type(exc).__name__}: {exc}")
        qname = dns.name.from_text(name)
        cnames = tuple(c.to_text(omit_final_dot=True).lower() for c in _cname_targets(ans, qname))
        records = tuple(rdata_value(r, rdtype) for r in ans.rrset) if ans.rrset is not None else ()
        return Answer(name, rdtype, OK if records else NODATA, records, cnames)


def _cname_targets(ans, qname):
    """Targets of the CNAME chain that the server put into the answer, in order."""
    targets, current = [], qname
    by_owner = {rrset.name: rrset for rrset in ans.response.answer if rrset.rdtype == dns.rdatatype.CNAME}
    while current in by_owner and len(targets) <= MAX_CNAME_CHAIN:
        current = by_owner[current][0].target
        targets.append(current)
    return targets


class SystemBackend:
    """The host's own resolver, as its programs see names: nsswitch (``/etc/hosts`` first, then DNS).

    A, AAAA and PTR go through the C library, bounded by a worker thread because ``getaddrinfo`` has no timeout of
    its own; other types have no C library call, so they go through dnspython with the system's resolv.conf.
    """

    def __init__(self):
        self._dns = None

    def lookup(self, name: str, rdtype: str, timeout: float) -> Answer:
        if rdtype in ("A", "AAAA"):
            family = socket.AF_INET if rdtype == "A" else socket.AF_INET6
            return _bounded(name, rdtype, timeout, lambda: _host_addresses(name, family))
        if rdtype == "PTR":
            address = address_from_reverse_name(name)
            if address is not None:
                return _bounded(name, rdtype, timeout, lambda: _host_names(address))
        if not DNSPYTHON.available:
            return Answer(name, rdtype, ERROR, error=DNSPYTHON.not_installed(f"{rdtype} records cannot be read"))
        if self._dns is None:
            self._dns = DnspythonBackend()
        return self._dns.lookup(name, rdtype, timeout)


def _bounded(name: str, rdtype: str, timeout: float, ask) -> Answer:
    """Run one C-library lookup on a daemon thread; past ``timeout`` the answer is a timeout (the thread is left)."""
    outcome: dict = {}

    def run():
        try:
            outcome["records"] = ask()
        except socket.gaierror as exc:
            outcome["status"] = _GAI_STATUS.get(exc.errno, ERROR)
            outcome["error"] = exc.strerror
        except socket.herror as exc:
            outcome["status"] = NXDOMAIN if exc.errno == 1 else ERROR  # 1: HOST_NOT_FOUND
            outcome["error"] = exc.strerror
        except (OSError, UnicodeError, ValueError) as exc:
            outcome["status"], outcome["error"] = INVALID, str(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return Answer(name, rdtype, TIMEOUT, error=f"no answer within {timeout:g}s")
    if "records" in outcome:
        records = tuple(outcome["records"])
        return Answer(name, rdtype, OK if records else NODATA, records)
    status = outcome["status"]
    return Answer(name, rdtype, status, error=None if status in (NXDOMAIN, NODATA) else outcome["error"])


# For one address family the C library does not tell "no such name" from "no address of this family" (glibc
# answers EAI_NONAME for both, depending on /etc/hosts): both are a definite "no data".
_GAI_STATUS = {socket.EAI_NONAME: NODATA, getattr(socket, "EAI_NODATA", socket.EAI_NONAME): NODATA}


def _host_addresses(name: str, family: int) -> list[str]:
    infos = socket.getaddrinfo(name, None, family, socket.SOCK_STREAM)
    return list(dict.fromkeys(str(ipaddress.ip_address(i[4][0].split("%", 1)[0])) for i in infos))


def _host_names(address: str) -> list[str]:
    primary, aliases, _addresses = socket.gethostbyaddr(address)
    return list(dict.fromkeys(normalize_name(n) for n in [primary, *aliases]))


def reverse_name(address: str) -> str:
    """The PTR question for an IP address (``10.2.0.192.in-addr.arpa``)."""
    return ipaddress.ip_address(address).reverse_pointer


def address_from_reverse_name(name: str) -> str | None:
    """The IP address a PTR question is about, or None when ``name`` is not under in-addr.arpa / ip6.arpa."""
    labels = normalize_name(name).split(".")
    try:
        if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
            nibbles = "".join(reversed(labels[:32]))
            return str(ipaddress.IPv6Address(int(nibbles, 16)))
    except ValueError:
        return None
    return None


@dataclass
class Resolver:
    """The one way module_utils ask DNS: cached per run, bounded by a per-query timeout and an overall deadline.

    Each (name, type) reaches the backend at most once per Resolver, even when many threads ask at the same time.
    """

    backend: object
    timeout: float = 5.0
    deadline: float | None = None
    _cache: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _expires: float | None = field(default=None, repr=False)
    asked: int = 0

    def __post_init__(self):
        # "not > 0" also refuses NaN, which compares false with everything and would disable every bound.
        if not (0 < self.timeout < math.inf):
            raise SmtpRelayError(f"timeout must be a positive number of seconds, got {self.timeout!r}", field="timeout")
        if self.deadline is not None:
            if not (0 < self.deadline < math.inf):
                raise SmtpRelayError(
                    f"deadline must be a positive number of seconds, got {self.deadline!r}", field="deadline"
                )
            self._expires = time.monotonic() + self.deadline

    def remaining(self) -> float | None:
        return None if self._expires is None else self._expires - time.monotonic()

    def query(self, name: str, rdtype: str) -> Answer:
        """Ask once per run; CNAME chains the server left unfinished are followed here."""
        rdtype = rdtype.upper()
        if rdtype not in SUPPORTED_TYPES:
            raise SmtpRelayError(f"unsupported DNS type {rdtype!r}; accepted: {', '.join(SUPPORTED_TYPES)}")
        name = normalize_name(name)
        chain: list[str] = []
        answer = self._cached(name, rdtype)
        while answer.status == NODATA and answer.cnames and rdtype != "CNAME":
            chain.extend(answer.cnames)
            target = answer.cnames[-1]
            if len(chain) > MAX_CNAME_CHAIN or target in chain[:-1] or target == name:
                # A loop is a lasting misconfiguration, not a failure to get an answer: no data, said why.
                return Answer(name, rdtype, NODATA, cnames=tuple(chain), error="CNAME chain too long or looping")
            answer = self._cached(target, rdtype)
        chain.extend(answer.cnames)
        if not chain:
            return answer
        return Answer(name, rdtype, answer.status, answer.records, tuple(chain), answer.error)

    def _cached(self, name: str, rdtype: str) -> Answer:
        key = (name, rdtype)
        with self._lock:
            fut = self._cache.get(key)
            owner = fut is None
            if owner:
                fut = self._cache[key] = Future()
        if owner:
            try:
                fut.set_result(self._ask(name, rdtype))
            except BaseException as exc:
                fut.set_exception(exc)
        return fut.result()

    def _ask(self, name: str, rdtype: str) -> Answer:
        budget = self.timeout
        left = self.remaining()
        if left is not None:
            if left <= 0:
                return Answer(name, rdtype, TIMEOUT, error="overall deadline reached before asking")
            budget = min(budget, left)
        with self._lock:
            self.asked += 1
        return self.backend.lookup(name, rdtype, budget)

    def addresses(self, name: str) -> tuple[list[str], list[Answer]]:
        """A and AAAA of a name, with both answers so callers can tell 'none' from 'unknown'."""
        answers = [self.query(name, "A"), self.query(name, "AAAA")]
        return [ip for a in answers for ip in a.records], answers

    def names(self, address: str) -> Answer:
        """The PTR names of an IP address."""
        return self.query(reverse_name(address), "PTR")


def nameserver_addresses(values, field: str = "nameservers") -> list[str]:
    """The DNS servers' addresses, normalised; anything that is not an IP address is refused, naming ``field``."""
    if values is None:
        return []
    if not isinstance(values, (list, tuple)):
        raise SmtpRelayError(f"{field}: expected a list of IP addresses, got {shown(values)}", field=field)
    servers = []
    for ns in values:
        try:
            if not isinstance(ns, str):
                raise ValueError(ns)
            servers.append(str(ipaddress.ip_address(ns.strip())))
        except ValueError:
            raise SmtpRelayError(
                f"{field}: {shown(ns)} is not an IP address; give the servers' IPv4 or IPv6 addresses",
                field=field,
            ) from None
    return servers


def make_resolver(
    nameservers=None,
    port: int = 53,
    timeout: float = 5.0,
    deadline: float | None = None,
    *,
    backend=None,
    system: bool = False,
):
    """A Resolver after checking the server options: the given backend, else dnspython asking ``nameservers``.

    Without nameservers, dnspython reads resolv.conf; ``system=True`` asks the host's own resolver instead
    (``SystemBackend``), for callers that must see names the way the host's programs do.
    """
    servers = nameserver_addresses(nameservers)
    port = int_option("port", port, minimum=1, maximum=65535)
    timeout = number_option("timeout", timeout)
    if deadline is not None:
        deadline = number_option("deadline", deadline)
    if backend is None:
        backend = SystemBackend() if system and not servers else DnspythonBackend(servers, port)
    return Resolver(backend, timeout, deadline)


def run_bounded(func, items, workers: int):
    """``[func(item) for item in items]`` on at most ``workers`` threads, results in input order."""
    items = list(items)
    if workers < 1:
        raise SmtpRelayError(f"workers must be at least 1, got {workers!r}", field="workers")
    if workers == 1 or len(items) <= 1:
        return [func(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(func, items))
