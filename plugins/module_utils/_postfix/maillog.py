# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what Postfix's mail log says about one message.

The queue alone cannot tell "sent" from "bounced": both leave it. Only the log's ``status=`` line does. The log is
Postfix's own ``maillog_file`` when set, else the syslog files, else the systemd journal; ``open_log`` picks the
first the host has, and every source only yields what was written after it was opened.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError

LOG_FILES = ("/var/log/mail.log", "/var/log/maillog")
JOURNAL_SOCKET = "/run/systemd/journal/socket"
# The syslog facility "mail" (Postfix's default syslog_facility), as the journal stores it.
MAIL_FACILITY = "SYSLOG_FACILITY=2"
# Bytes read from a log file per look: a busy relay's log must not be read whole into memory.
MAX_READ = 8 * 1024 * 1024

# "postfix/smtp[12]: 4BBA724696B: to=<...>" in a log file, "4BBA724696B: to=<...>" from journalctl -o cat.
_QUEUE_LINE = re.compile(r"(?:^|\]: )([0-9A-Za-z]{5,}): (.*)$")
_STATUS = re.compile(r"\bstatus=([a-z]+) \((.*)\)\s*$")
_RELAY = re.compile(r"\brelay=([^,\s]+)")
_DSN = re.compile(r"\bdsn=([0-9.]+)")
_FROM = re.compile(r"^from=<([^>]*)>")
_MESSAGE_ID = re.compile(r"^message-id=(\S+)")


@dataclass
class Delivery:
    """One ``status=`` line: sent, deferred, bounced (expired and undeliverable are Postfix's other words)."""

    status: str
    reason: str
    relay: str | None = None
    dsn: str | None = None


@dataclass
class Trace:
    """What the log says about one message: its queue id, envelope sender, delivery attempts, and removal."""

    queue_id: str | None = None
    sender: str | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    removed: bool = False

    def final(self) -> Delivery | None:
        """The last delivery outcome; a deferral is final only for the attempt it reports."""
        return self.deliveries[-1] if self.deliveries else None


def trace(lines: list[str], message_id: str) -> Trace:
    """The trace of the message whose cleanup line says ``message-id=<message_id>``."""
    found = Trace()
    wanted = f"<{message_id}>"
    for line in lines:
        match = _QUEUE_LINE.search(line)
        if not match:
            continue
        queue_id, rest = match.groups()
        if found.queue_id is None:
            ids = _MESSAGE_ID.match(rest)
            if ids and ids.group(1) == wanted:
                found.queue_id = queue_id
            continue
        if queue_id != found.queue_id:
            continue
        _read_line(found, rest)
    return found


def _read_line(found: Trace, rest: str) -> None:
    sender = _FROM.match(rest)
    if sender:
        found.sender = sender.group(1)
        return
    if rest.strip() == "removed":
        found.removed = True
        return
    status = _STATUS.search(rest)
    if status:
        relay, dsn = _RELAY.search(rest), _DSN.search(rest)
        found.deliveries.append(
            Delivery(
                status=status.group(1),
                reason=" ".join(status.group(2).split()),
                relay=relay.group(1) if relay and relay.group(1) != "none" else None,  # "none": no connection
                dsn=dsn.group(1) if dsn else None,
            )
        )


class FileLog:
    """A log file read from where it ended when opened (every look reads all of that, since the start of the test);
    a rotated (shorter) file is read from its start."""

    def __init__(self, path: str):
        self.source = path
        try:
            self.offset = os.path.getsize(path)
        except OSError:
            self.offset = 0

    def lines(self) -> list[str]:
        try:
            size = os.path.getsize(self.source)
            if size < self.offset:  # rotated: everything in the new file is new
                self.offset = 0
            with open(self.source, "rb") as handle:
                handle.seek(max(self.offset, size - MAX_READ))
                return handle.read(MAX_READ).decode("utf-8", errors="replace").splitlines()
        except OSError:
            return []


class JournalLog:
    """The systemd journal's mail-facility entries since a moment (journalctl, through the runner)."""

    source = "journal"

    def __init__(self, runner, since: float):
        self.runner = runner
        # A second early: journalctl's --since has whole seconds.
        self.since = int(since) - 1

    def lines(self) -> list[str]:
        args = ["--no-pager", "--quiet", "--output=cat", f"--since=@{self.since}", MAIL_FACILITY]
        try:
            rc, out, _err = self.runner.run_unchecked("journalctl", args)
        except SmtpRelayError:
            return []
        return out.splitlines() if rc == 0 else []


def open_log(runner, maillog_file: str, since: float, exists=os.path.exists) -> FileLog | JournalLog | None:
    """The host's mail log, opened now; None when the host has none this code can read."""
    if maillog_file and maillog_file.startswith("/") and not maillog_file.startswith("/dev/"):
        return FileLog(maillog_file)
    for path in LOG_FILES:
        if exists(path):
            return FileLog(path)
    if exists(JOURNAL_SOCKET):
        return JournalLog(runner, since)
    return None
