# SPDX-License-Identifier: GPL-3.0-or-later
"""Every DNS-using module, through its entry point, against every mode of tests/peers/hostile_dns.py.

Each run must end within a bound derived from the module's own ``timeout`` option, in bounded memory, as a module
result (never a traceback), with the checks that needed DNS saying what happened: ``unknown`` when no usable answer
came, a per-check status when a (lying or huge) answer came. A run where DNS did not answer is never ``valid: true``,
and ``fail_on`` with ``unknown`` fails it. Mode ``good`` answers from a small zone through the same server and must
pass, so that the suite can fail. Only a loopback server the test starts itself is used: no ``peers`` mark.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import tracemalloc
from dataclasses import dataclass, field

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._probe import relay_check as _relaycheck
from ansible_collections.smtp.relay.plugins.module_utils._probe.net_stages import MAX_ADDRESSES
from ansible_collections.smtp.relay.plugins.module_utils._probe.stages import PROBE_DEADLINE_FACTOR
from ansible_collections.smtp.relay.plugins.modules import allowlist_request, relay_check, sender_check
from tests.peers.hostile_dns import LIE_MARKERS, MODES, HostileDNS
from tests.peers.hostile_smtp import HostileSMTP
from tests.unit.plugins.module_utils.sender_fakes import KEY_2048

TIMEOUT = 0.3
# Huge answers (a 60 KB TXT record, 100 MX, A or PTR records, over TCP) take dnspython a few tenths of a second to
# parse under tracemalloc: their runs get the time to read them, since what they test is what is done with the data.
HUGE_TIMEOUT = 2.0
SLACK = 1.0  # seconds a run may take beyond its DNS bound: module start, option parsing, tracemalloc, a busy machine
# Bytes of Python heap one run may use. DNS messages are at most 64 KiB each; the largest run, sender_check
# against huge answers (four of about 60 KB), peaks near 2.5 MB, the others near 0.25 MB.
PEAK_LIMIT = 8 << 20
UNANSWERED = ("silent", "refused", "servfail", "truncated", "garbage", "slow")  # no usable answer ever comes

DOMAIN = "sender-ok.org"
RELAY_NAME = "relay.sender-ok.org"  # its MX is the relay's host, SMTP_NAME, where relay_check finds the SMTP server
SMTP_NAME = "smtp.sender-ok.org"
FQDN = "h1.sender-ok.org"
ZONE = {
    (DOMAIN, "MX"): [f"10 mx.{DOMAIN}."],
    (DOMAIN, "TXT"): ['"v=spf1 ip4:192.0.2.25 -all"'],
    (f"s1._domainkey.{DOMAIN}", "TXT"): [f'"v=DKIM1; k=rsa; " "p={KEY_2048[:200]}" "{KEY_2048[200:]}"'],
    (f"_dmarc.{DOMAIN}", "TXT"): [f'"v=DMARC1; p=reject; rua=mailto:dmarc@{DOMAIN}"'],
    (RELAY_NAME, "MX"): [f"10 {SMTP_NAME}."],
    (SMTP_NAME, "A"): ["127.0.0.1"],
    (FQDN, "A"): ["192.0.2.10"],
    ("10.2.0.192.in-addr.arpa", "PTR"): [f"{FQDN}."],
}


def sender_check_args(server, timeout):
    return {"addresses": [f"noreply@{DOMAIN}"], "relay_ips": ["192.0.2.25"], "dkim_selectors": ["s1"],
            "nameservers": server.nameservers, "dns_port": server.port, "timeout": timeout}  # fmt: skip


def allowlist_request_args(server, timeout):
    # fqdn, egress and relay_host given: nothing is read from the host, every lookup goes to the server.
    # relay_host without brackets and with a port: the relay is found by its MX, as Postfix would.
    return {"fqdn": FQDN, "purpose": "Order mails", "team": "Shop", "contact": "shop-ops@example.org",
            "egress": ["192.0.2.10"], "relay_host": f"{RELAY_NAME}:587", "relay_public": False,
            "nameservers": server.nameservers, "dns_port": server.port, "timeout": timeout}  # fmt: skip


def relay_check_args(server, timeout, smtp_port):
    # No brackets: relay_check asks the server for the MX of RELAY_NAME, then probes the SMTP server it names.
    return {"relayhost": f"{RELAY_NAME}:{smtp_port}", "tls": "none", "nameservers": server.nameservers,
            "timeout": timeout, "ehlo_name": "probe.example.org"}  # fmt: skip


# Most distinct questions one run may ask; a bound on time is that many timeouts.
MAX_QUESTIONS = {
    # MX; TXT for SPF (pyspf's evaluation asks the same name, answered from the run's cache); TXT of the DKIM
    # selector; TXT of _dmarc (the domain is its own organizational domain).
    "sender_check": 4,
    # MX of the relay; A and AAAA of at most 5 of its exchanges (Postfix's smtp_mx_address_limit); A and AAAA of
    # the FQDN; the PTR of the one egress address.
    "allowlist_request": 1 + 2 * 5 + 2 + 1,
    # The MX of the relayhost, then A and AAAA of its most preferred exchange (or of the relayhost itself).
    "relay_check": 3,
}

_UNANSWERED_CHECKS = {
    "sender_check": "domain.exists=unknown spf.record=unknown spf.relay_not_authorized=unknown dkim.record=unknown "
    "dmarc.record=unknown",
    "allowlist_request": "relay.lookup_failed=unknown fqdn.lookup_failed=unknown rdns.lookup_failed=unknown",
    # The probe stops at the MX lookup: nothing is connected to.
    "relay_check": "dns.mx=unknown tcp.connect=skip",
}
# (module, mode) -> "check_id=status ..." of the checks that depend on the DNS answers.
EXPECTED = {
    **{(module, mode): checks for module, checks in _UNANSWERED_CHECKS.items() for mode in UNANSWERED},
    ("sender_check", "good"): "domain.exists=pass mx.present=pass spf.record=pass spf.relay_not_authorized=pass "
    "dkim.record=pass dkim.key=pass dmarc.record=pass dmarc.alignment=pass",
    ("allowlist_request", "good"): "fqdn.forward_confirmed=pass rdns.match=pass address.ok=pass",
    ("relay_check", "good"): "dns.mx=pass dns.address=pass smtp.banner=pass smtp.ehlo=pass",
    # Lying: the lies with another id or another question are dropped, as they must be; the one answer to the
    # question holds no record of the asked type at the asked name. That is NOERROR without data (NODATA), the
    # same a recursive resolver would hand on after dropping the unrelated records: "the name exists, without
    # such records" is what the server said, so these are per-check findings, not unknowns. None of the lied
    # records may show up anywhere (LIE_MARKERS).
    ("sender_check", "lying"): "domain.exists=pass mx.present=warn spf.record=warn spf.relay_not_authorized=warn "
    "dkim.record=fail dmarc.record=warn",
    ("allowlist_request", "lying"): "relay.unresolved=warn fqdn.unresolved=fail rdns.missing=warn",
    # No MX record: Postfix falls back to the relayhost's own address, and so does the probe; it has none either.
    ("relay_check", "lying"): "dns.no_mx=warn dns.no_address=fail tcp.connect=skip",
    # Huge: the answers are read and judged: malformed records (Arabic-Indic digits in SPF and DMARC, bytes that
    # are no UTF-8 in a DKIM key) fail their checks, by name.
    ("sender_check", "huge"): "domain.exists=pass mx.present=pass spf.record=fail spf.relay_not_authorized=fail "
    "dkim.record=fail dmarc.record=fail",
    ("allowlist_request", "huge"): "fqdn.forward_mismatch=fail",
    # The most preferred MX, a name of bytes that are not ASCII, has 100 A and 100 AAAA records: the probe tries
    # MAX_ADDRESSES of them (all refused: the test lets only 127.0.0.1 through).
    ("relay_check", "huge"): "dns.mx=pass dns.address=pass tcp.refused=fail smtp.banner=skip",
}
MODULES = ("sender_check", "allowlist_request", "relay_check")
# Bugs this suite found stay listed here while open (strict xfail): none today. Fixed: the allowlist asked A and
# AAAA of every MX exchange (200 questions for 100 MX records); relay_check called a relay whose MX nobody
# answered valid.
BUGS: dict = {}
CASES = [
    pytest.param(module, mode, id=f"{module}-{mode}",
                 marks=[pytest.mark.xfail(strict=True, reason=BUGS[(module, mode)])] if (module, mode) in BUGS else [])
    for module in MODULES
    for mode in MODES
]  # fmt: skip


class Watchdog:
    """Ends a run that overruns its bound without hanging the suite: past ``bound`` seconds, or past
    ``max_questions`` distinct questions, the server switches to REFUSED (every later question fails at once)."""

    def __init__(self, server: HostileDNS, bound: float, max_questions: int):
        self.server, self.bound, self.max_questions = server, bound, max_questions
        self.overrun: str | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.done.set()
        self.thread.join(timeout=5)

    def _watch(self):
        while not self.done.wait(0.05):
            asked = len(self.server.asked())
            if time.monotonic() - self.started > self.bound:
                self.overrun = f"still running after {self.bound:g}s"
            elif asked > self.max_questions:
                self.overrun = f"asked {asked} distinct questions, more than {self.max_questions}"
            if self.overrun:
                self.server.mode = "refused"
                return


@dataclass
class RelayCheckSeams:
    dns_port: int = 53  # where relay_check's resolver sends its questions
    connected: list = field(default_factory=list)  # addresses the probe connected to (only 127.0.0.1 is let through)


@pytest.fixture
def relay_check_seams(monkeypatch):
    """relay_check has no option for the DNS port: its resolver is made to ask ``seams.dns_port``. Its connections
    go to 127.0.0.1 only: an address a hostile answer hands out elsewhere is refused here, never connected to."""
    seams = RelayCheckSeams()
    real_resolver, real_connect = _dns.make_resolver, _relaycheck.open_connection

    def make_resolver(nameservers=None, *args, **kwargs):
        kwargs.pop("port", None)
        return real_resolver(nameservers, seams.dns_port, *args[1:], **kwargs)

    def connect(address, port, timeout):
        seams.connected.append(address)
        if address != "127.0.0.1":
            raise ConnectionRefusedError(f"{address}: not loopback, refused by the test")
        return real_connect(address, port, timeout)

    monkeypatch.setattr(_dns, "make_resolver", make_resolver)
    monkeypatch.setattr(_relaycheck, "open_connection", connect)
    # Postfix is never there: relay_check judges the settings its options imply.
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: None)
    return seams


def timeout_for(mode: str) -> float:
    return HUGE_TIMEOUT if mode == "huge" else TIMEOUT


def bound_for(module: str, timeout: float) -> float:
    """Seconds one run may take: each distinct question its timeout; relay_check's probe its overall deadline."""
    if module == "relay_check":
        return PROBE_DEADLINE_FACTOR * timeout + SLACK
    return MAX_QUESTIONS[module] * timeout + SLACK


@dataclass
class Run:
    """One module run against the hostile server: its result and what it cost."""

    module: str
    timeout: float
    result: dict
    elapsed: float
    peak: int  # bytes of Python heap at most
    overrun: str | None  # why the watchdog stepped in, if it did
    asked: list  # the distinct (name, type) questions the server received

    @property
    def checks(self) -> list[dict]:
        if self.module == "sender_check":
            domains = self.result["domains"].values()
            return [c for domain in domains for c in domain["checks"]] + self.result["relay"]["checks"]
        return self.result["checks"]


def run_bounded(run_module, module: str, args: dict, server: HostileDNS, timeout: float, *, measure=True) -> Run:
    """Run the module once; ``measure``: under tracemalloc (which makes parsing large answers several times slower)."""
    main = {"sender_check": sender_check, "allowlist_request": allowlist_request, "relay_check": relay_check}[module]
    server.queries.clear()
    if measure:
        tracemalloc.start()
    try:
        with Watchdog(server, bound_for(module, timeout), MAX_QUESTIONS[module]) as watchdog:
            result = run_module(main.main, args)  # SystemExit only: an exception would be a traceback
            elapsed = time.monotonic() - watchdog.started
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return Run(module, timeout, result, elapsed, peak, watchdog.overrun, server.asked())


def statuses(text: str) -> dict:
    """``"a=pass b=fail"`` -> ``{"a": "pass", "b": "fail"}``."""
    return dict(item.split("=") for item in text.split())


def by_id(checks) -> dict:
    found = {}
    for c in checks:
        found.setdefault(c["id"], c)
    return found


def assert_bounded(run: Run):
    assert run.overrun is None, run.overrun
    assert run.asked, "the module asked the hostile server nothing: the case tests nothing"
    assert len(run.asked) <= MAX_QUESTIONS[run.module], run.asked
    # Each distinct question within its timeout (retries, TCP fallback and parsing included).
    assert run.elapsed <= len(run.asked) * run.timeout + SLACK, (run.elapsed, run.asked)
    assert run.elapsed <= bound_for(run.module, run.timeout), run.elapsed
    assert run.peak < PEAK_LIMIT, f"peak {run.peak} bytes"
    text = json.dumps(run.result)
    assert "Traceback" not in text and "exception" not in run.result, run.result.get("msg")
    assert "domain.check_error" not in text, run.result.get("msg")  # an exception turned into a failed check
    for marker in LIE_MARKERS:
        assert marker not in text, f"a lie was believed: {marker!r} in the result"


@pytest.mark.parametrize(("module", "mode"), CASES)
def test_module_against_hostile_dns(module, mode, run_module, request):
    """One module, one mode: bounded, the right statuses, never valid without answers, fail_on [unknown] fails."""
    timeout = timeout_for(mode)
    with HostileDNS(mode, ZONE, delay=3 * timeout) as server, contextlib.ExitStack() as stack:
        if module == "relay_check":
            seams = request.getfixturevalue("relay_check_seams")
            seams.dns_port = server.port
            smtp = stack.enter_context(HostileSMTP("good", "none"))
            args = relay_check_args(server, timeout, smtp.port)
        else:
            args = {"sender_check": sender_check_args, "allowlist_request": allowlist_request_args}[module](
                server, timeout
            )
        run = run_bounded(run_module, module, args, server, timeout)
        assert not server.errors, server.errors
        assert_bounded(run)
        result, checks = run.result, by_id(run.checks)
        expected = statuses(EXPECTED[(module, mode)])
        got = {check_id: checks.get(check_id, {}).get("status") for check_id in expected}
        assert got == expected, [
            (c["id"], c["status"], c["message"][:120]) for c in checks.values() if c["stage"] != "static"
        ]
        if mode == "good":
            assert not result.get("failed"), result["msg"]
            assert result["valid"] is True, result["msg"]
            assert not [c for c in checks.values() if c["status"] in ("fail", "unknown")], result["msg"]
        if module == "relay_check":
            # Only the good relay is connected to; of the huge answer's addresses, no more than MAX_ADDRESSES.
            # relay_check has no fail_on; whether it is valid without an MX answer: the test after this one.
            if mode == "huge":
                assert len(seams.connected) == MAX_ADDRESSES and "127.0.0.1" not in seams.connected
            else:
                assert seams.connected == (["127.0.0.1"] if mode == "good" else []), seams.connected
            return
        assert bool(result.get("failed")) == (result["verdict"] == "fail"), result["msg"]  # default fail_on [fail]
        if mode in UNANSWERED:
            assert result["valid"] is False and result["verdict"] == "unknown", result["msg"]
        strict_args = {**args, "fail_on": ["fail", "unknown"]}
        strict_run = run_bounded(run_module, module, strict_args, server, timeout, measure=False)
        assert_bounded(strict_run)
        strict = strict_run.result
    assert bool(strict.get("failed")) == (strict["verdict"] in ("fail", "unknown")), strict["msg"]
    assert strict["verdict"] == result["verdict"]
    if mode in UNANSWERED:
        assert "unknown" in strict["msg"] and strict["valid"] is False


# One mode without an answer at all, one with an error answer: the flaw does not depend on how DNS failed.
UNANSWERED_RELAY = ["silent", "servfail"]


@pytest.mark.parametrize("mode", UNANSWERED_RELAY)
def test_relay_check_without_an_mx_answer_is_not_valid(mode, run_module, relay_check_seams):
    """A relay whose MX nobody answered was not probed at all: that is not a valid relay, and not success."""
    with HostileDNS(mode, ZONE, delay=3 * TIMEOUT) as server, HostileSMTP("good", "none") as smtp:
        relay_check_seams.dns_port = server.port
        result = run_module(relay_check.main, relay_check_args(server, TIMEOUT, smtp.port))
    assert by_id(result["checks"])["dns.mx"]["status"] == "unknown"
    assert result["valid"] is False, result["msg"]
    assert not result.get("failed"), "fail_on defaults to [fail]: an unknown alone does not fail the task"
    with HostileDNS(mode, ZONE, delay=3 * TIMEOUT) as server, HostileSMTP("good", "none") as smtp:
        relay_check_seams.dns_port = server.port
        strict = run_module(
            relay_check.main, {**relay_check_args(server, TIMEOUT, smtp.port), "fail_on": ["fail", "unknown"]}
        )
    assert strict.get("failed") is True and "dns.mx" in strict["msg"], strict["msg"]


def test_truncated_answer_without_tcp_listener_is_unknown(run_module):
    """The TC bit sends the client to TCP, where nothing listens: refused at once, every check unknown."""
    with HostileDNS("truncated", ZONE, tcp=False) as server:
        run = run_bounded(run_module, "sender_check", sender_check_args(server, TIMEOUT), server, TIMEOUT)
    assert_bounded(run)
    got = {c["id"]: c["status"] for c in run.checks}
    expected = statuses(_UNANSWERED_CHECKS["sender_check"])
    assert {check_id: got.get(check_id) for check_id in expected} == expected
    assert run.result["valid"] is False and run.result["verdict"] == "unknown"
