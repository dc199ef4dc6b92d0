# SPDX-License-Identifier: GPL-3.0-or-later
"""Property: whatever postconf or the role's plan accepts, Postfix's own parser reads back exactly as given.

Hypothesis generates settings (hostile characters included: every line boundary Python knows, controls,
odd Unicode, '#', '$', '='); each one the codec accepts is written into a main.cf next to a hand-written one
(comments, continuation lines), and the real ``postconf -n -c DIR`` of the lab's Postfix must see exactly
the parameters and values the codec says it wrote: nothing more (no smuggled line), nothing different.
Refusals must be SmtpRelayError (or the filter's error) naming the setting or variable.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import (
    normalize_settings,
    parameters,
    plan_changes,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import lines_of, parse_postconf_output
from tests.peers import lab

pytestmark = pytest.mark.peers

BASE = (
    "# written by hand\n"
    "smtpd_banner = $myhostname ESMTP\n"
    "biff = no\n"
    "mynetworks = 127.0.0.0/8\n"
    "    [::1]/128\n"
    "# a comment inside a value's lines\n"
    "    10.0.0.0/8\n"
    "\n"
    "alias_maps = hash:/etc/aliases\n"
)
# Parameters Postfix knows (postconf -n lists only those).
NAMES = [
    "relayhost", "myorigin", "smtpd_banner", "mynetworks", "biff", "alias_maps", "smtp_tls_CAfile",
    "smtp_helo_name", "message_size_limit", "smtp_tls_security_level", "mydestination", "inet_interfaces",
]  # fmt: skip
HOSTILE = [*"\n\r\t\v\f\x1c\x1d\x1e\x85\u2028\u2029\x00\x7f\x9f\u00a0\u3000#$=,[]:@ \\'\"é中", "\U0001f600"]
TEXT = st.text(alphabet=st.one_of(st.sampled_from(HOSTILE), st.characters(exclude_categories=["Cs"])), max_size=30)
VALUE = st.one_of(st.none(), TEXT, st.booleans(), st.integers(-5, 10**6), st.lists(TEXT, max_size=3))
NAME = st.one_of(st.sampled_from(NAMES), st.builds(lambda n, t: n + t, st.sampled_from(NAMES), TEXT))
ROLE_TEXT_VARIABLES = ["postfix_myorigin", "postfix_relay_ca_file", "postfix_rate_delay", "postfix_myhostname"]
HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}


def accepted_by_postconf() -> tuple[list[tuple[str, dict]], int]:
    cases, refused = [], [0]

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.dictionaries(NAME, VALUE, max_size=4))
    def generate(wanted):
        try:
            normalized = normalize_settings(wanted)
        except SmtpRelayError as e:
            refused[0] += 1
            assert e.msg.startswith("settings"), e.msg
            return
        text, _changed, _restart = plan_changes(BASE, normalized)
        expected = parameters(BASE)
        for name, value in normalized.items():
            if value is None:
                expected.pop(name, None)
            elif name in NAMES:  # postconf -n lists only parameters Postfix knows
                expected[name] = value
        cases.append((text, expected))

    generate()
    return cases, refused[0]


def accepted_by_the_plan() -> tuple[list[tuple[str, dict]], int]:
    cases, refused = [], [0]

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(
        st.dictionaries(st.sampled_from(ROLE_TEXT_VARIABLES), TEXT, max_size=2),
        st.dictionaries(st.sampled_from(["smtpd_banner", "smtp_helo_name", "message_size_limit"]), VALUE, max_size=2),
    )
    def generate(variables, extra):
        spec = {"postfix_relay_host": "relay.example.org", **variables, "postfix_main_cf": extra}
        try:
            plan = relay_settings(spec, host=HOST)
        except AnsibleFilterError as e:
            refused[0] += 1
            assert e.message.startswith("postfix_"), e.message
            return
        wanted = {k: v for k, v in plan["main_cf"].items() if v is not None}
        text, _changed, _restart = plan_changes("", wanted)
        cases.append((text, wanted))

    generate()
    return cases, refused[0]


def postfix_reads(cases: list[tuple[str, dict]]) -> list[dict]:
    """Every case's main.cf through the lab's real postconf -n, in one podman exec."""
    root = lab.STATE / "codec"
    shutil.rmtree(root, ignore_errors=True)
    for index, (text, _expected) in enumerate(cases):
        (root / f"{index:04d}").mkdir(parents=True)
        (root / f"{index:04d}" / "main.cf").write_text(text, encoding="utf-8")
        # Dated back: Postfix pauses over a configuration file written within the last second or so.
        os.utime(root / f"{index:04d}" / "main.cf", (time.time() - 60, time.time() - 60))
    script = "for d in /peers/codec/*; do echo \"==== $d\"; postconf -n -c $d 2>/dev/null || echo '!!!! failed'; done"
    out = lab.podman("exec", lab.PEERS, "sh", "-c", script).stdout
    shutil.rmtree(root, ignore_errors=True)
    blocks: list[list[str]] = []
    for line in lines_of(out):
        if line.startswith("==== "):
            blocks.append([])
        else:
            blocks[-1].append(line)
    seen = []
    for block in blocks:
        values = parse_postconf_output("\n".join(block))
        values.pop("config_directory", None)
        if "!!!! failed" in block:
            values["!failed"] = "postconf failed"
        seen.append(values)
    return seen


@pytest.mark.parametrize("source", [accepted_by_postconf, accepted_by_the_plan], ids=["postconf", "plan"])
def test_postfix_sees_exactly_what_was_given(source):
    cases, refused = source()
    print(f"{source.__name__}: {len(cases)} accepted inputs written and read back, {refused} refused")
    assert len(cases) > 20, "the generator must produce accepted inputs too"
    seen = postfix_reads(cases)
    assert len(seen) == len(cases)
    for (text, expected), got in zip(cases, seen, strict=True):
        assert got == expected, f"main.cf:\n{text!r}"
