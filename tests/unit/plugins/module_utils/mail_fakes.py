# SPDX-License-Identifier: GPL-3.0-or-later
"""A host's Postfix as mail_test sees it: sendmail, postqueue -j, postcat, postfix status, journalctl.

Each look of the follower reads the journal, then the queue: ``looks`` is the list of (queue entries, new log
lines) the host shows at each look after the submission (the last one repeats). Log lines accumulate as a journal
does. Lines use the formats Postfix 3.7 was seen to write (tests/integration/mail_test).
"""

from __future__ import annotations

import json
import os

from ansible_collections.smtp.relay.plugins.module_utils._postfix import mail_test
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maillog import JOURNAL_SOCKET

MARKER = "0123456789abcdef0123456789abcdef"
HOSTNAME = "h1.example.test"
MESSAGE_ID = f"smtp-relay-test.{MARKER}@{HOSTNAME}"
QID = "5177424696E"
RCPT = "ops@example.org"
SENDER = "noreply@example.org"
RELAY = "relay.example.org[192.0.2.25]:587"


def entry(queue: str, queue_id: str = QID, reason: str | None = None, rcpt: str = RCPT, sender: str = SENDER) -> dict:
    recipient = {"address": rcpt, **({"delay_reason": reason} if reason else {})}
    return {"queue_name": queue, "queue_id": queue_id, "arrival_time": 1, "sender": sender, "recipients": [recipient]}


def picked_up(queue_id: str = QID, message_id: str = MESSAGE_ID) -> list[str]:
    return [f"{queue_id}: uid=0 from=<root>", f"{queue_id}: message-id=<{message_id}>"]


def queued(queue_id: str = QID, sender: str = SENDER) -> list[str]:
    return [f"{queue_id}: from=<{sender}>, size=307, nrcpt=1 (queue active)"]


def status_line(status: str, reason: str, queue_id: str = QID, relay: str = RELAY, dsn: str = "2.0.0") -> str:
    timing = "delay=0.08, delays=0.04/0.03/0.01/0"
    return f"{queue_id}: to=<{RCPT}>, relay={relay}, {timing}, dsn={dsn}, status={status} ({reason})"


class FakeHost:
    """Callable like ``module.run_command`` (``data`` is sendmail's standard input); records every call."""

    def __init__(self, looks=(([], []),), *, running=True, sendmail_rc=0, before=(), config_dir="/nonexistent"):
        self.looks = list(looks)
        self.running = running
        self.sendmail_rc = sendmail_rc
        self.before = list(before)
        self.config_dir = config_dir
        self.calls: list[list[str]] = []
        self.message: str | None = None
        self.queue_reads = 0
        self.log_reads = 0
        self.log: list[str] = []
        self.headers = {}  # queue id -> postcat -h output

    def __call__(self, args, data=None):
        self.calls.append(list(args))
        name, rest = os.path.basename(args[0]), list(args[1:])
        if name == "postconf":
            if rest == ["-d", "-h", "mail_version"]:
                return 0, "3.7.11\n", ""
            return 0, f"relayhost = [relay.example.org]:587\nmyhostname = {HOSTNAME}\nmaillog_file =\n", ""
        if name == "postfix":
            return (0 if self.running else 1), "", ""
        if name == "sendmail":
            self.message = data
            return self.sendmail_rc, "", "sendmail: fatal: no such thing" if self.sendmail_rc else ""
        if name == "postqueue":
            return 0, self._queue(), ""
        if name == "journalctl":
            if self.message is not None:
                self.log += self.looks[min(self.log_reads, len(self.looks) - 1)][1]
                self.log_reads += 1
            # The lines name the Message-ID the module made (random outside the engine's tests).
            return 0, "".join(line + "\n" for line in self.log).replace(MESSAGE_ID, self._message_id()), ""
        if name == "postcat":
            return 0, self.headers.get(rest[-1], ""), ""
        return 127, "", f"{name}: not found"

    def _message_id(self) -> str:
        for line in (self.message or "").splitlines():
            if line.startswith("Message-ID: <"):
                return line[len("Message-ID: <") : -1]
        return MESSAGE_ID

    def _queue(self) -> str:
        if self.message is None:
            entries = self.before
        else:
            entries = self.looks[min(self.queue_reads, len(self.looks) - 1)][0]
            self.queue_reads += 1
        return "".join(json.dumps(e) + "\n" for e in entries)

    def called(self, name: str) -> list[list[str]]:
        return [c for c in self.calls if os.path.basename(c[0]) == name]


class FakeTime:
    def __init__(self):
        self.now = 1000.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.01)


def env(journal=True, senders=None, files=()) -> mail_test.Env:
    clock = FakeTime()
    paths = set(files) | ({JOURNAL_SOCKET} if journal else set())
    return mail_test.Env(
        clock=clock.clock,
        wall=lambda: 1796215467.0,
        sleep=clock.sleep,
        exists=paths.__contains__,
        new_id=lambda: MARKER,
        senders=senders or (lambda params: {"domains": {}, "relay": {"checks": []}}),
    )
