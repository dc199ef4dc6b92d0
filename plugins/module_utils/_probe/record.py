# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what one probe run is asked and records, shared by the stage modules.

``ProbeSpec`` is the question, ``ProbeResult`` the answer; ``Run`` holds both with the run's seams (the resolver and
the ``connect`` callable), its ``Clock``, and the bookkeeping every stage uses: one check per base id of ``STAGES``,
limit failures reported under the stage that was running, the stages never reached reported as skipped.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, SKIP, WARN, check
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import Clock, ProbeLimit, StageTimeout

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
_STAGE_OF = {base_id: stage for stage, base_id in STAGES}


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
    # Where the expected names come from when not main.cf (the relay's smtp_tls_policy_maps entry), for messages.
    policy: str = ""
    policy_names: bool = False  # cert_match comes from the entry's match= (an expected name asked for explicitly)
    fingerprints: tuple = ()  # pinned certificate digests (level fingerprint), hex without colons, lower case
    digest: str = "sha256"
    min_version: str | None = None  # "TLSv1.2" or "TLSv1.3": older protocols are not offered
    lookup: tuple = ()  # smtp_host_lookup as Postfix will do it: ("dns",), ("native",), ("dns", "native")
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


class StageFailed(Exception):
    """The probe cannot go on past this stage (the check saying why is already recorded)."""


_TIMEOUT_HINT = (
    "the relay, or something on the way, stalls or answers too slowly (a tarpit, an overloaded relay, "
    "a firewall dropping packets mid-session); raise timeout only if it is merely slow"
)
_TOO_LARGE_HINT = "no SMTP server sends that much: check that this port runs an SMTP service"


class Run:
    """One probe run: the spec, the result being built, the seams, the clock and the checks' bookkeeping."""

    def __init__(self, spec: ProbeSpec, resolver, connect, now=None, native=None):
        self.spec = spec
        self.resolver = resolver
        self.native = native  # the system resolver, to explain a relay DNS does not know (smtp_host_lookup = dns)
        self.connect = connect  # (address, port, timeout) -> a connected socket
        self.now = now or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.result = ProbeResult()
        self.reported: set = set()
        self.clock = Clock(spec.timeout)
        self.current = ("dns.address", "DNS", time.monotonic())  # the stage a limit failure is reported under

    def begin(self, base_id: str, what: str) -> float:
        """Enter a stage: base id and words for a limit failure in it; returns when it started (for elapsed_ms)."""
        started = time.monotonic()
        self.current = (base_id, what, started)
        return started

    def add(
        self, base_id: str, check_id: str, status: str, message: str, stage: str, *, hint=None, started=None, **extra
    ):
        if started is not None:
            extra["elapsed_ms"] = round((time.monotonic() - started) * 1000, 1)
        self.reported.add(base_id)
        self.result.checks.append(check(check_id, status, message, stage, hint, **extra))

    def skip(self, stages, reason: str):
        """Report the checks of ``stages`` (stage names) not reported yet as skipped."""
        for stage, base_id in STAGES:
            if stage in stages and base_id not in self.reported:
                self.add(base_id, base_id, SKIP, reason, stage)

    def limit_failed(self, error: ProbeLimit):
        """The relay overran a bound in the current stage: fail it as ``<stage>.timeout`` / ``.reply_too_large``."""
        base_id, what, started = self.current
        stage = _STAGE_OF.get(base_id, base_id.split(".")[0])
        hint = _TIMEOUT_HINT if isinstance(error, StageTimeout) else _TOO_LARGE_HINT
        self.add(base_id, f"{stage}.{error.kind}", FAIL, f"{what}: {error}", stage, hint=hint, started=started)

    def skip_rest(self, reason: str):
        self.skip(set(_STAGE_OF.values()), f"skipped: {reason}")

    def connect_again(self):
        """A new connection to the address the probe reached, as one stage."""
        self.clock.start()
        return self.connect(self.result.address, self.spec.port, self.clock.remaining())

    def server(self) -> str:
        """The host the probe talks to: the MX it chose, or the relay's own name."""
        return self.result.server or self.spec.host

    def sni(self) -> str | None:
        """The SNI Postfix sends: smtp_tls_servername's name, "hostname" or "nexthop"; none when unset."""
        name = self.spec.servername
        if name == "hostname":
            return self.server()
        if name == "nexthop":
            return self.spec.host
        return name or None

    def severity(self) -> str:
        """Certificate problems fail only where Postfix itself would refuse the relay (verify/secure)."""
        return FAIL if self.spec.verify else WARN
