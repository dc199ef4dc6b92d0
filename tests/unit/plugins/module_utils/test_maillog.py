# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading Postfix's mail log for one message, and finding the host's log, with lines Postfix 3.7 was seen to write."""

from __future__ import annotations

from ansible_collections.smtp.relay.plugins.module_utils._postfix import maillog
from ansible_collections.smtp.relay.plugins.module_utils._postfix.info import parse_queue, queue_entries

MID = "smtp-relay-test.abc@h1.example.test"
SYSLOG = "Dec  2 12:44:27 mt0 postfix/{}[750]: {}"
SEEN = [
    "5177424696E: uid=0 from=<root>",
    f"5177424696E: message-id=<{MID}>",
    "5177424696E: from=<noreply@campus.smtp-relay.test>, size=307, nrcpt=1 (queue active)",
    "Verified TLS connection established to relay.smtp-relay.test[fd00:89:100::2]:587: TLSv1.3 with cipher X",
    "5177424696E: to=<ops@smtp-relay.test>, relay=relay.smtp-relay.test[fd00:89:100::2]:587, delay=0.08, "
    "delays=0.04/0.03/0.01/0, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 7D82898FC689)",
    "5177424696E: removed",
]


def test_the_journal_lines_trace_one_message():
    found = maillog.trace(SEEN, MID)
    assert (found.queue_id, found.sender, found.removed) == ("5177424696E", "noreply@campus.smtp-relay.test", True)
    (delivery,) = found.deliveries
    assert delivery == maillog.Delivery(
        "sent", "250 2.0.0 Ok: queued as 7D82898FC689", "relay.smtp-relay.test[fd00:89:100::2]:587", "2.0.0"
    )


def test_syslog_file_lines_trace_the_same():
    lines = [SYSLOG.format("smtp", line) for line in SEEN]
    assert maillog.trace(lines, MID) == maillog.trace(SEEN, MID)


def test_other_messages_and_a_message_id_that_only_starts_alike_are_not_ours():
    lines = [
        f"AAAAA11111: message-id=<{MID}.other>",
        "AAAAA11111: to=<x@example.org>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect refused)",
        *SEEN[:2],
        "BBBBB22222: to=<x@example.org>, relay=none, delay=1, dsn=5.0.0, status=bounced (no)",
    ]
    found = maillog.trace(lines, MID)
    assert found.queue_id == "5177424696E" and found.deliveries == []
    assert maillog.trace(lines, "nobody@nowhere") == maillog.Trace()


def test_a_deferral_then_a_delivery_ends_with_the_delivery():
    lines = [
        *SEEN[:2],
        "5177424696E: to=<o@x.org>, relay=none, delay=1, dsn=4.4.1, status=deferred (connect to r[10.0.0.1]:587: "
        "Connection refused)",
        "5177424696E: to=<o@x.org>, relay=r[10.0.0.1]:587, delay=300, dsn=2.0.0, status=sent (250 ok)",
    ]
    found = maillog.trace(lines, MID)
    assert [d.status for d in found.deliveries] == ["deferred", "sent"]
    assert found.final().status == "sent"
    assert found.deliveries[0].relay is None, "relay=none: no relay was reached"


def test_a_log_file_is_read_from_its_end_at_opening_and_from_the_start_after_rotation(tmp_path):
    path = tmp_path / "mail.log"
    path.write_text("old line\n")
    log = maillog.FileLog(str(path))
    assert log.lines() == []
    with path.open("a") as handle:
        handle.write("new line\n")
    assert log.lines() == ["new line"]
    path.write_text("")  # rotated: a new, shorter file
    assert log.lines() == []
    path.write_text("after rotation, a line longer than what the old file had\n")
    assert log.lines() == ["after rotation, a line longer than what the old file had"]
    assert maillog.FileLog(str(tmp_path / "missing.log")).lines() == []


def test_open_log_prefers_postfix_maillog_file_then_syslog_files_then_the_journal(tmp_path):
    own = str(tmp_path / "postfix.log")
    every = {own, *maillog.LOG_FILES, maillog.JOURNAL_SOCKET}
    assert maillog.open_log(None, own, 0, every.__contains__).source == own
    assert maillog.open_log(None, "", 0, every.__contains__).source == "/var/log/mail.log"
    assert maillog.open_log(None, "/dev/stdout", 0, {"/var/log/maillog"}.__contains__).source == "/var/log/maillog"
    journal = maillog.open_log(None, "", 1796215467.5, {maillog.JOURNAL_SOCKET}.__contains__)
    assert (journal.source, journal.since) == ("journal", 1796215466)
    assert maillog.open_log(None, "", 0, set().__contains__) is None


def test_the_journal_is_asked_for_mail_facility_lines_since_the_start():
    asked = []

    class Runner:
        def run_unchecked(self, binary, args):
            asked.append([binary, *args])
            return 0, "a\nb\n", ""

    assert maillog.JournalLog(Runner(), 100.2).lines() == ["a", "b"]
    assert asked == [["journalctl", "--no-pager", "--quiet", "--output=cat", "--since=@99", "SYSLOG_FACILITY=2"]]


def test_queue_entries_is_the_one_postqueue_reader_relay_info_counts_with():
    text = '{"queue_name": "deferred", "queue_id": "A1", "recipients": []}\nnot json\n[1]\n\n{"queue_id": "B2"}\n'
    assert [e["queue_id"] for e in queue_entries(text)] == ["A1", "B2"]
    assert parse_queue(text, 0)["deferred"] == 1
