# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: following one submitted mail through Postfix's queue and mail log (mail_test's).

The mail log gives the queue id (cleanup logs the Message-ID) and the ``status=`` line; ``postqueue -j`` (read by
info.queue_entries) says whether the mail is still queued and why. Without a log the queue id is found among the new
queue entries by the marker header (``postcat -h``; maildrop ids change at pickup), and a mail that left the queue
is reported as having left it, never as sent.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, UNKNOWN, WARN, check
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.info import queue_entries
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maillog import Delivery, Trace, trace

MARKER_HEADER = "X-Smtp-Relay-Test"
POLL = 1.0
# How long a mail may be out of sight (gone from the queue, no final log line yet) before that is the answer:
# the log is written a moment after the queue file is removed, and a mail can pass the queue between two looks.
GRACE = 3.0
STAGE = "mail"
NO_LOG_HINT = (
    "Postfix logs through syslog: install a syslog daemon or journald, or set Postfix's maillog_file "
    "(Postfix 3.4+), to tell sent from bounced"
)


@dataclass
class Outcome:
    status: str  # sent | deferred | bounced | unknown | skipped
    check: dict
    queue_id: str | None = None
    sender: str | None = None
    relay: str | None = None
    reason: str | None = None
    dsn: str | None = None
    elapsed: float | None = None


def read_queue(runner, config_dir: str) -> list[dict]:
    rc, out, err = runner.run_unchecked("postqueue", ["-c", config_dir, "-j"])
    if rc != 0:
        raise SmtpRelayError(" ".join((err or out).split())[:300] or f"postqueue -j: rc={rc}")
    return queue_entries(out)


def _delay_reason(entry: dict | None) -> str | None:
    for rcpt in (entry or {}).get("recipients") or ():
        reason = " ".join(str(rcpt.get("delay_reason") or "").split())
        if reason:
            return reason
    return None


class Follower:
    """Follows one submitted mail through the queue and the log until it has an answer or the time is up."""

    def __init__(self, runner, opts, *, log, before: set, ids: dict, env):
        self.runner, self.opts, self.log, self.env = runner, opts, log, env
        self.before, self.marker, self.message_id = before, ids["marker"], ids["message_id"]
        self.queue_id: str | None = None
        self.sender: str | None = None
        self.seen = False  # in the queue at some look (maildrop included: the mail is on its way in)
        self.postcat_done: set = set()
        self.out_of_sight: float | None = None

    def follow(self, started: float) -> Outcome:
        deadline = started + self.opts.timeout
        while True:
            try:
                outcome = self.look()
            except SmtpRelayError as exc:
                outcome = Outcome(
                    UNKNOWN, check("mail.delivery", UNKNOWN, f"the queue could not be read: {exc.msg}", STAGE)
                )
            if outcome is None and self.env.clock() >= deadline:
                outcome = self.at_deadline()
            if outcome is not None:
                outcome.queue_id, outcome.elapsed = self.queue_id, round(self.env.clock() - started, 1)
                outcome.sender = outcome.sender or self.sender
                return outcome
            self.env.sleep(max(0.0, min(POLL, deadline - self.env.clock())))

    def look(self) -> Outcome | None:
        logged = trace(self.log.lines(), self.message_id) if self.log else Trace()
        entries = read_queue(self.runner, self.opts.config_dir)
        self.queue_id = self.queue_id or logged.queue_id or self._find_in_queue(entries)
        self.sender = logged.sender or self.sender
        entry = next((e for e in entries if self.queue_id and e.get("queue_id") == self.queue_id), None)
        if entry:
            self.sender = entry.get("sender") or self.sender
        self.seen = self.seen or entry is not None or self._arriving(entries)
        final = logged.final()
        if final and final.status != "deferred":
            return delivered(final, self.queue_id)
        if entry and entry.get("queue_name") == "deferred":
            return deferred(self.queue_id, _delay_reason(entry) or (final.reason if final else None), entry, final)
        if final:  # the log said deferred; the queue file moves to the deferred queue a moment later
            return deferred(self.queue_id, final.reason, None, final)
        if entry or self._arriving(entries):
            self.out_of_sight = None
            return None
        return self._gone(logged)

    def _arriving(self, entries: list[dict]) -> bool:
        """A new entry for our recipient not yet identified (maildrop, or one postcat has not been asked about)."""
        return any(
            e.get("queue_id") not in self.before and e.get("queue_id") not in self.postcat_done and self._for_us(e)
            for e in entries
        )

    def _for_us(self, entry: dict) -> bool:
        return any(
            str(r.get("address", "")).lower() == self.opts.rcpt_to.lower() for r in entry.get("recipients") or ()
        )

    def _find_in_queue(self, entries: list[dict]) -> str | None:
        """The new queue entry whose headers hold our marker (maildrop ids change at pickup: not those)."""
        for entry in entries:
            queue_id = entry.get("queue_id")
            if queue_id in self.before or queue_id in self.postcat_done or entry.get("queue_name") == "maildrop":
                continue
            if not self._for_us(entry):
                continue
            self.postcat_done.add(queue_id)
            rc, out, _err = self.runner.run_unchecked("postcat", ["-c", self.opts.config_dir, "-h", "-q", queue_id])
            if rc == 0 and f"{MARKER_HEADER}: {self.marker}" in out:
                return queue_id
        return None

    def _gone(self, logged: Trace) -> Outcome | None:
        """Not in the queue and no final log line: wait out the grace, then say what is known."""
        now = self.env.clock()
        if self.out_of_sight is None:
            self.out_of_sight = now
        if now - self.out_of_sight < GRACE:
            return None
        if self.log is None:
            message = "the test mail left the queue; no mail log to tell sent from bounced"
            if not self.seen:
                message = "the test mail was not seen in the queue (it may have left between two looks); no mail log"
            return Outcome(UNKNOWN, check("mail.delivery", WARN, message, STAGE, hint=NO_LOG_HINT))
        if logged.removed or self.seen:
            message = (
                f"the test mail {self.queue_id or ''} left the queue without a delivery status in {self.log.source}"
            )
            return Outcome(UNKNOWN, check("mail.delivery", UNKNOWN, " ".join(message.split()), STAGE))
        return None  # the log has not mentioned it yet: keep looking until the deadline

    def at_deadline(self) -> Outcome:
        if self.queue_id or self.seen:
            reason = f"still queued after {self.opts.timeout:g}s; no delivery attempt finished"
            return deferred(self.queue_id, reason, None)
        where = f" or in {self.log.source}" if self.log else ""
        return Outcome(
            UNKNOWN,
            check(
                "mail.delivery", UNKNOWN, f"the test mail was not found in the queue{where} within the timeout", STAGE
            ),
        )


def delivered(final: Delivery, queue_id: str | None) -> Outcome:
    where = f" by {final.relay}" if final.relay else ""
    if final.status == "sent":
        result = check("mail.delivery", PASS, f"test mail {queue_id} accepted{where}: {final.reason}", STAGE)
        return Outcome("sent", result, relay=final.relay, reason=final.reason, dsn=final.dsn)
    result = check(
        "mail.delivery",
        FAIL,
        f"test mail {queue_id} {final.status}{where}: {final.reason}",
        STAGE,
        hint="the relay refused it for good: read its reply (sender not allowed, recipient unknown, auth required)",
    )
    return Outcome("bounced", result, relay=final.relay, reason=final.reason, dsn=final.dsn)


def deferred(queue_id, reason, entry, final: Delivery | None = None) -> Outcome:
    queue = (entry or {}).get("queue_name")
    text = reason or "no reason given"
    result = check(
        "mail.delivery",
        FAIL,
        f"test mail {queue_id or '(queue id unknown)'} deferred{f' ({queue} queue)' if queue else ''}: {text}",
        STAGE,
        hint="Postfix keeps it and retries; check the relay's name, port, TLS and credentials with "
        "smtp.relay.relay_check, and the queue with postqueue -p",
    )
    return Outcome(
        "deferred", result, relay=final.relay if final else None, reason=text, dsn=final.dsn if final else None
    )
