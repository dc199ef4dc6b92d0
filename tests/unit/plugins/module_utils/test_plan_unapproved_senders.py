# SPDX-License-Identifier: GPL-3.0-or-later
"""postfix_unapproved_senders_to: senders outside the approved domains rewritten to one approved address."""

from __future__ import annotations

import re

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._plan.role import plan

HOST = {"fqdn": "vm1.dept.example.edu", "hostname": "vm1", "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}
BASE = {
    "postfix_relay_host": "relay.example.edu",
    "postfix_allowed_sender_domains": ["dept.example.edu", "*.lab.example.edu"],
    "postfix_sender_address": "noreply@dept.example.edu",
}


def table(result: dict) -> dict:
    return next(t for t in result["tables"] if t["name"] == "unapproved_senders")


def rewritten(rule: dict, sender: str) -> bool:
    """The rule as Postfix reads it: a negated, case-insensitive POSIX pattern (these forms mean the same in re)."""
    body = re.fullmatch(r"!/(.*)/", rule["pattern"]).group(1)
    return re.search(body, sender, re.IGNORECASE) is None


def test_senders_outside_the_approved_domains_are_rewritten_after_sender_canonical():
    result = plan({**BASE, "postfix_unapproved_senders_to": "noreply@dept.example.edu"}, HOST)
    assert result["main_cf"]["sender_canonical_maps"] == (
        "hash:/etc/postfix/sender_canonical, regexp:/etc/postfix/unapproved_senders"
    )
    entries = table(result)
    assert (entries["type"], entries["state"]) == ("regexp", "present")
    [rule] = entries["entries"]
    assert rule["action"] == "noreply@dept.example.edu"
    for sender in ("app@internal.lan", "x@example.edu", "a@dept.example.edu.evil.org", "b@xdept.example.edu"):
        assert rewritten(rule, sender), sender
    for sender in ("a@dept.example.edu", "A@DEPT.EXAMPLE.EDU", "b@host.lab.example.edu"):
        assert not rewritten(rule, sender), sender


def test_off_by_default_the_table_is_absent_and_sender_canonical_alone():
    result = plan(BASE, HOST)
    assert result["main_cf"]["sender_canonical_maps"] == "hash:/etc/postfix/sender_canonical"
    assert table(result)["state"] == "absent"


def test_without_a_sender_address_only_the_regexp_table():
    variables = {**BASE, "postfix_sender_address": "", "postfix_myorigin": "dept.example.edu"}
    result = plan({**variables, "postfix_unapproved_senders_to": "noreply@dept.example.edu"}, HOST)
    assert result["main_cf"]["sender_canonical_maps"] == "regexp:/etc/postfix/unapproved_senders"


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"postfix_unapproved_senders_to": "noreply"}, "is not a mail address"),
        ({"postfix_unapproved_senders_to": "a b@dept.example.edu"}, "is not a mail address"),
        ({"postfix_unapproved_senders_to": "noreply@elsewhere.org"}, "outside postfix_allowed_sender_domains"),
        ({"postfix_unapproved_senders_to": "x@dept.example.edu\n"}, "line break"),
        (
            {"postfix_unapproved_senders_to": "x@dept.example.edu", "postfix_allowed_sender_domains": []},
            "needs postfix_allowed_sender_domains",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_variable(variables, problem):
    merged = {**BASE, **variables}
    if not merged["postfix_allowed_sender_domains"]:
        merged["postfix_sender_address"] = ""
    with pytest.raises(SmtpRelayError, match=problem) as caught:
        plan(merged, HOST)
    assert caught.value.msg.startswith("postfix_unapproved_senders_to")
