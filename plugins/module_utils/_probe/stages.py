# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: a staged SMTP client probe of a relay, one check per stage, as Postfix would see it.

Stages: DNS (MX when the relayhost asks for it, then A/AAAA), TCP, banner, EHLO, STARTTLS or implicit TLS,
certificate (chain, name as Postfix matches it, SNI, expiry), AUTH mechanisms, optional AUTH, optional
MAIL FROM / RCPT TO, optional test message. This module runs them in order and holds the SMTP greeting and EHLO;
DNS and TCP are in ``net_stages``, TLS and certificates in ``tls_stages``, AUTH, envelope and message in
``mail_stages``, the SMTP client in ``session``. The outside goes
through two seams: DNS through the one resolver (``_dns.Resolver``: the host's own resolver, or the given
nameservers for MX and A/AAAA alike), connections through a ``connect(address, port, timeout)`` callable.
Passwords are used on the wire only, never put in a check.

Bounds, whatever the relay does (a tarpit dripping one byte at a time, a flood, garbage, silence): every stage -
each DNS lookup, each TCP connection attempt, the TLS handshake, and each SMTP command with its whole reply, the
greeting included - ends within ``timeout`` seconds; the whole probe ends within ``PROBE_DEADLINE_FACTOR`` (6) x
``timeout``: a stage still running then fails as a timeout and the rest is skipped. One reply is at most 64 KiB
(``session`` keeps these bounds). Closing the sockets may add a moment to either bound.
"""

from __future__ import annotations

import contextlib
import socket

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS
from ansible_collections.smtp.relay.plugins.module_utils._dns import make_resolver
from ansible_collections.smtp.relay.plugins.module_utils._probe import mail_stages, tls_stages
from ansible_collections.smtp.relay.plugins.module_utils._probe.net_stages import alternative_ports_hint, dns, tcp
from ansible_collections.smtp.relay.plugins.module_utils._probe.record import (
    STAGES,
    ProbeResult,
    ProbeSpec,
    Run,
    StageFailed,
)
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import (
    PROBE_DEADLINE_FACTOR,
    ProbeLimit,
    SmtpError,
    SmtpSession,
    StageTimeout,
)
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import IMPLICIT_TLS_PORTS

__all__ = ["PROBE_DEADLINE_FACTOR", "STAGES", "ProbeResult", "ProbeSpec", "alternative_ports_hint", "probe"]


def open_connection(address: str, port: int, timeout: float) -> socket.socket:
    """The probe's ``connect`` seam as the host does it."""
    return socket.create_connection((address, port), timeout=timeout)


def probe(spec: ProbeSpec, resolver=None, connect=None, native=None) -> ProbeResult:
    """Run every stage against the relay; never raises for what the relay does, only reports it.

    ``resolver`` defaults to the host's own resolver, ``connect`` to ``open_connection``; ``native``: the system
    resolver, asked only to explain a relay that ``resolver`` (DNS alone, as Postfix by default) has no address for.
    """
    resolver = resolver or make_resolver(timeout=spec.timeout, system=True)
    run = Run(spec, resolver, connect or open_connection, native=native)
    try:
        client = open_session(run, tcp(run, dns(run)))
        try:
            mail_stages.auth(run, client)
            mail_stages.envelope(run, client)
        except ProbeLimit:
            client.close()  # no QUIT: the relay is past answering in time
            raise
        finally:
            _leave(client)
    except StageFailed as e:
        run.skip_rest(str(e))
    except ProbeLimit as e:
        run.limit_failed(e)
        run.skip_rest("the relay overran the probe's bounds")
    except (OSError, SmtpError, ValueError) as e:
        # The relay hung up, stopped answering or said something unusable mid-session (ValueError: bad
        # base64 in an AUTH challenge, text that does not encode): say where, then skip what is left.
        run.add("probe.error", "probe.error", FAIL, f"the session broke off: {type(e).__name__}: {e}", "smtp")
        run.skip_rest("the session broke off")
    run.skip_rest("not asked for")
    return run.result


def _leave(client: SmtpSession):
    """QUIT when the session is still usable (bounded like any command); close in any case."""
    if not client.closed:
        with contextlib.suppress(OSError, SmtpError, ProbeLimit):
            client.quit()
    client.close()


# -- SMTP greeting, EHLO and TLS -----------------------------------------------------------------------------------
def open_session(run: Run, sock) -> SmtpSession:
    """Banner, EHLO and TLS on an open socket; returns the session after the (post-TLS) EHLO."""
    spec = run.spec
    try:
        contexts = tls_stages.contexts(spec)
    except (OSError, ValueError) as e:
        sock.close()
        raise tls_stages.ca_unreadable(run, e) from None
    if spec.tls == "none":
        run.skip(("tls", "cert"), "skipped: TLS is off (tls=none)")
    client = SmtpSession(sock, run.clock)
    try:
        if spec.tls == "implicit":
            client = tls_stages.secure(run, client, contexts)
        banner(run, client)
        ehlo(run, client)
        if spec.tls == "starttls":
            client = tls_stages.secure(run, client, contexts)
            if client.tls_active:
                ehlo(run, client, after_tls=True)
    except BaseException:
        client.close()
        raise
    return client


def banner(run: Run, client: SmtpSession):
    spec = run.spec
    started = run.begin("smtp.banner", "the greeting")
    try:
        reply = client.greeting()
    except (StageTimeout, SmtpError, OSError) as e:
        timed_out = isinstance(e, StageTimeout)
        implicit_hint = (
            "the port may speak implicit TLS: use tls=implicit / smtp_tls_wrappermode = yes"
            if spec.tls != "implicit" and (spec.port in IMPLICIT_TLS_PORTS or timed_out)
            else "check that this port runs an SMTP service"
        )
        run.add(
            "smtp.banner",
            "smtp.no_banner",
            FAIL,
            f"the greeting: {e}" if timed_out else "the connection closed before the greeting",
            "smtp",
            hint=implicit_hint,
            started=started,
        )
        raise StageFailed("no SMTP greeting") from None
    if reply.code == -1:
        run.add(
            "smtp.banner",
            "smtp.not_smtp",
            FAIL,
            f"the relay's greeting is not SMTP: {reply.text!r}",
            "smtp",
            hint="check that this port runs an SMTP service"
            + ("" if spec.tls == "implicit" else "; if it speaks TLS at once, use tls=implicit"),
            started=started,
        )
        raise StageFailed("the relay does not speak SMTP")
    if reply.code != 220:
        run.add(
            "smtp.banner",
            "smtp.banner_rejected",
            FAIL,
            f"the relay greets with {reply.code} {reply.text}",
            "smtp",
            hint="the relay refuses this host: is its egress IP allowed on the relay?",
            started=started,
        )
        raise StageFailed("the relay refused the session")
    run.add("smtp.banner", "smtp.banner", PASS, f"220 {reply.text}", "smtp", started=started, banner=reply.text)


def _ehlo_name_refused(run: Run, name: str):
    try:
        alabel = name.encode("idna").decode("ascii")
    except UnicodeError:
        alabel = None
    run.add(
        "smtp.ehlo",
        "smtp.ehlo_name_invalid",
        FAIL,
        f"the EHLO name {name!r} is not a domain name in ASCII, as SMTP requires",
        "smtp",
        hint="set smtp_helo_name / myhostname (or ehlo_name) to the host's name"
        + (f" in its ASCII form, {alabel}" if alabel and alabel != name else ""),
    )
    raise StageFailed("the EHLO name is not ASCII")


def ehlo(run: Run, client: SmtpSession, after_tls: bool = False):
    name = run.spec.ehlo_name
    started = run.begin("smtp.ehlo", "EHLO after STARTTLS" if after_tls else "EHLO")
    if not (name.isascii() and name.isprintable() and name and " " not in name):
        _ehlo_name_refused(run, name)
    try:
        reply = client.ehlo(name)
        code, text = reply.code, reply.text
    except (OSError, SmtpError) as e:
        code, text = 0, str(e)
    if code != 250:
        run.add(
            "smtp.ehlo",
            "smtp.ehlo_rejected",
            FAIL,
            f"EHLO {name} answered {code} {text}",
            "smtp",
            hint="check smtp_helo_name / myhostname",
            started=started,
        )
        raise StageFailed("EHLO failed")
    if not after_tls:
        extensions = sorted(client.features)
        run.add(
            "smtp.ehlo",
            "smtp.ehlo",
            PASS,
            f"EHLO accepted; extensions: {' '.join(extensions)}",
            "smtp",
            started=started,
            extensions=extensions,
        )
