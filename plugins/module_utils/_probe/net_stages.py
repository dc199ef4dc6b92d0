# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the probe's network stages: the relay's MX and addresses (dns.mx, dns.address), then
the TCP connection (tcp.connect), each bounded by the stage timeout.

DNS goes through the one resolver seam (``_dns.Resolver``), connections through the run's ``connect`` callable.
A question nobody answered makes its check ``unknown``, never a pass or a fail.
"""

from __future__ import annotations

import contextlib
import errno
import socket
import threading

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP, UNKNOWN, WARN
from ansible_collections.smtp.relay.plugins.module_utils._dns import ERROR, TIMEOUT, Answer
from ansible_collections.smtp.relay.plugins.module_utils._probe.record import Run, StageFailed
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import StageTimeout
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.providers import provider_ports

MAX_ADDRESSES = 5


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


# -- DNS ---------------------------------------------------------------------------------------------------------
def _answers(run: Run, questions, resolver=None) -> list[Answer]:
    """Ask each (name, type) at once, each on a thread of its own, all within one stage: late ones are timeouts.

    The resolver bounds each question by the timeout too; the threads keep the stage bounded when its questions
    add up (A then AAAA) and when the probe's overall deadline is nearer.
    """
    run.clock.start()
    answers: list = [None] * len(questions)

    def ask(i: int, name: str, rdtype: str):
        try:
            answers[i] = (resolver or run.resolver).query(name, rdtype)
        except Exception as e:  # a question without answer, never an exception lost in a thread
            answers[i] = Answer(name, rdtype, ERROR, error=str(e))

    workers = [threading.Thread(target=ask, args=(i, *q), daemon=True) for i, q in enumerate(questions)]
    for worker in workers:
        worker.start()
    for worker in workers:
        with contextlib.suppress(StageTimeout):
            worker.join(run.clock.remaining())
    return [
        a or Answer(name, rdtype, TIMEOUT, error=run.clock.reason()) for a, (name, rdtype) in zip(answers, questions)
    ]


def _unanswered(answers: list[Answer]) -> str:
    return "; ".join(f"{a.rdtype}: {a.error or a.status}" for a in answers if not a.answered)


def dns(run: Run) -> list[str]:
    spec = run.spec
    server = _mx(run) if spec.mx_lookup else spec.host
    run.result.server = server
    if spec.is_ip:
        run.add("dns.address", "dns.address", SKIP, f"{server} is an IP address: no lookup", "dns")
        return [server]
    started = run.begin("dns.address", f"address lookup of {server}")
    answers = _answers(run, [(server, "A"), (server, "AAAA")])
    addresses = list(dict.fromkeys(ip for a in answers for ip in a.records))
    if not addresses and run.native is not None:
        _outside_dns(run, server, answers, started)
    if not addresses and not all(a.answered for a in answers):
        run.add(
            "dns.address",
            "dns.address",
            UNKNOWN,
            f"address lookup of {server} got no answer: {_unanswered(answers)}",
            "dns",
            hint="check the host's resolvers (/etc/resolv.conf), or nameservers",
            started=started,
        )
        raise StageFailed("the relay's address is unknown")
    if not addresses:
        run.add(
            "dns.address",
            "dns.no_address",
            FAIL,
            f"{server} has no A or AAAA record",
            "dns",
            hint="check the relay's name for typos",
            started=started,
        )
        raise StageFailed("the relay has no address")
    run.add(
        "dns.address",
        "dns.address",
        PASS,
        f"{server} has address(es) {', '.join(addresses)}",
        "dns",
        started=started,
        addresses=addresses,
    )
    return addresses[:MAX_ADDRESSES]


def _outside_dns(run: Run, server: str, answers: list[Answer], started: float):
    """DNS has no address for the relay (Postfix asks DNS only, smtp_host_lookup = dns): when the system resolver
    (/etc/hosts) has one, the probe would pass where Postfix fails. Say so, and stop as Postfix would."""
    found = _answers(run, [(server, "A"), (server, "AAAA")], run.native)
    native = list(dict.fromkeys(ip for a in found for ip in a.records))
    if not native:
        return
    dns_said = "; ".join(f"{a.rdtype}: {a.error or a.status}" for a in answers)
    run.add(
        "dns.address",
        "dns.host_lookup",
        FAIL,
        f"{server} has no address in DNS ({dns_said}), only through the system resolver ({', '.join(native)}, "
        "/etc/hosts or another source): with smtp_host_lookup = dns Postfix asks DNS alone and defers the mail "
        "with 'Name service error'",
        "dns",
        hint="set smtp_host_lookup = native (role: postfix_relay_host_lookup: native), or publish the name in DNS",
        started=started,
        addresses=native,
    )
    raise StageFailed("Postfix will not find the relay's address")


def _mx(run: Run) -> str:
    """The exchange to probe: the MX of lowest preference, else the name itself (as Postfix does)."""
    host = run.spec.host
    started = run.begin("dns.mx", f"MX lookup of {host}")
    (answer,) = _answers(run, [(host, "MX")])
    if not answer.answered:
        run.add(
            "dns.mx",
            "dns.mx",
            UNKNOWN,
            f"MX lookup of {host} got no answer: {_unanswered([answer])}",
            "dns",
            hint="check the host's resolvers",
            started=started,
        )
        raise StageFailed("the relay's MX records are unknown")
    records = sorted(answer.records)
    if not records:
        run.add(
            "dns.mx",
            "dns.no_mx",
            WARN,
            f"{host} has no MX record: Postfix uses its address",
            "dns",
            hint=f"write the relayhost in brackets, [{host}]:{run.spec.port}, to skip the MX lookup",
            started=started,
        )
        return host
    server = records[0][1]
    listed = ", ".join(f"{p} {n}" for p, n in records)
    run.add(
        "dns.mx",
        "dns.mx",
        PASS,
        f"MX of {host}: {listed}; probing {server}",
        "dns",
        started=started,
        mx=[{"preference": p, "exchange": n} for p, n in records],
    )
    return server


# -- TCP ---------------------------------------------------------------------------------------------------------
def tcp(run: Run, addresses: list[str]) -> socket.socket:
    spec = run.spec
    failures = []
    for address in addresses:
        started = run.begin("tcp.connect", f"connecting to {address} port {spec.port}")
        run.clock.start()
        try:
            sock = run.connect(address, spec.port, run.clock.remaining())
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
            run.result.address = address
            tried = "".join(f"; {a} failed: {why}" for a, _k, why in failures)
            run.add(
                "tcp.connect",
                "tcp.connect",
                PASS,
                f"connected to {address} port {spec.port}{tried}",
                "tcp",
                started=started,
                address=address,
            )
            return sock
    raise _tcp_failed(run, failures, started)


def _tcp_failed(run: Run, failures: list, started: float) -> StageFailed:
    """Record the failed connection (the first address's kind of failure decides the id); the error to raise."""
    spec = run.spec
    address, kind, _why = failures[0]
    details = "; ".join(f"{a}: {why}" for a, _k, why in failures)
    alternatives = alternative_ports_hint(run.server(), spec.port)
    server = run.result.server
    if kind == "timeout":
        message = (
            f"port {spec.port} of {server} does not answer ({details}): packets are dropped, "
            "so outbound traffic is blocked by a firewall or the relay does not admit this host"
        )
        hint = "ask for the egress path to be opened" + (f"; {alternatives}" if alternatives else "")
    elif kind == "refused":
        message = f"port {spec.port} of {server} refuses connections ({details}): relay down or wrong port"
        hint = "check the port and that the relay runs" + (f"; {alternatives}" if alternatives else "")
    else:
        message = f"cannot reach {server} port {spec.port} ({details})"
        hint = "check the host's routes and firewall"
    run.add(
        "tcp.connect", f"tcp.{kind}", FAIL, message, "tcp", hint=hint, started=started, address=address, reason=kind
    )
    return StageFailed(f"TCP connection failed ({kind})")
