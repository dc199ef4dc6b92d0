# SPDX-License-Identifier: GPL-3.0-or-later
"""mail_test's engine against a fake host: what it sends, how it follows the mail, and what it concludes."""

from __future__ import annotations

import email.parser

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix import mail_test as mt
from ansible_collections.smtp.relay.plugins.module_utils._postfix.mail_follow import GRACE, MARKER_HEADER
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from tests.unit.plugins.module_utils import mail_fakes as mf

SENT_REPLY = "250 2.0.0 Ok: queued as 7D82898FC689"
REFUSED = "connect to relay.example.org[192.0.2.25]:587: Connection refused"


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    """A configuration directory with a main.cf (the engine never looks at /etc/postfix in unit tests)."""
    (tmp_path / "main.cf").write_text("relayhost = [relay.example.org]:587\n")
    monkeypatch.setattr(mt, "DEFAULT_CONFIG_DIR", str(tmp_path))
    return str(tmp_path)


def run(host, env=None, check_mode=False, **params):
    params = {"rcpt_to": mf.RCPT, **params}
    return mt.mail_test(PostconfRunner(host), params, check_mode=check_mode, env=env or mf.env())


def failing(host, env=None, **params) -> dict:
    with pytest.raises(SmtpRelayError) as caught:
        run(host, env, **params)
    return {**caught.value.details, "msg": caught.value.msg}


def by_id(result: dict) -> dict:
    return {c["id"]: c for c in result["checks"]}


def test_a_mail_the_relay_accepts_is_sent_with_its_reply():
    looks = [([], mf.picked_up() + mf.queued() + [mf.status_line("sent", SENT_REPLY), f"{mf.QID}: removed"])]
    host = mf.FakeHost(looks)
    result = run(host)
    assert result["status"] == "sent" and result["changed"] is True
    assert (result["queue_id"], result["relay"], result["reason"], result["dsn"]) == (
        mf.QID,
        mf.RELAY,
        SENT_REPLY,
        "2.0.0",
    )
    assert result["sender"] == mf.SENDER, "the sender Postfix used, after its rewriting"
    assert result["marker"] == mf.MARKER and result["message_id"] == mf.MESSAGE_ID
    assert [c["status"] for c in result["checks"]] == ["pass"] * 4
    assert list(by_id(result)) == ["mail.service", "mail.log", "mail.submit", "mail.delivery"]
    assert by_id(result)["mail.log"]["message"] == "mail log: journal"
    assert result["msg"].startswith(f"test mail to {mf.RCPT}: sent")


def test_the_mail_is_marked_and_submitted_with_sendmail_t(config_dir):
    host = mf.FakeHost([([], [*mf.picked_up(), mf.status_line("sent", SENT_REPLY)])])
    run(host, subject="nightly check")
    (sendmail,) = host.called("sendmail")
    assert sendmail[1:] == ["-C", config_dir, "-i", "-t"]
    headers = email.parser.Parser().parsestr(host.message, headersonly=True)
    assert headers[MARKER_HEADER] == mf.MARKER
    assert headers["Message-ID"] == f"<{mf.MESSAGE_ID}>"
    assert (headers["To"], headers["Subject"], headers["Auto-Submitted"]) == (
        f"<{mf.RCPT}>",
        "nightly check",
        "auto-generated",
    )
    assert headers["From"] is None, "without mail_from Postfix writes the From it would write for real mail"


def test_mail_from_is_the_envelope_and_the_from_header():
    host = mf.FakeHost([([], [*mf.picked_up(), mf.status_line("sent", SENT_REPLY)])])
    run(host, mail_from="Alerts@Example.ORG", subject="Prüfung")
    (sendmail,) = host.called("sendmail")
    assert sendmail[-2:] == ["-f", "Alerts@example.org"]
    assert "From: <Alerts@example.org>" in host.message
    assert "Subject: =?utf-8?" in host.message, "a non-ASCII subject is encoded, never raw in a header"


def test_a_deferred_mail_reports_postfix_reason_at_once_and_fails_the_task():
    looks = [
        ([mf.entry("active")], mf.picked_up() + mf.queued()),
        ([mf.entry("deferred", reason=REFUSED)], [mf.status_line("deferred", REFUSED, relay="none", dsn="4.4.1")]),
    ]
    result = failing(mf.FakeHost(looks))
    assert (result["status"], result["reason"], result["dsn"]) == ("deferred", REFUSED, "4.4.1")
    assert result["changed"] is True, "a mail was submitted"
    assert by_id(result)["mail.delivery"]["status"] == "fail"
    assert REFUSED in result["msg"]
    assert result["elapsed"] < 5, "the deferral is the answer: its next attempt is minutes away"


def test_fail_on_empty_returns_the_deferral_as_data():
    looks = [([mf.entry("deferred", reason=REFUSED)], mf.picked_up())]
    result = run(mf.FakeHost(looks), fail_on=[])
    assert (result["status"], result["reason"]) == ("deferred", REFUSED)


def test_a_mail_still_queued_at_the_timeout_is_deferred_and_the_wait_is_bounded():
    env = mf.env()
    host = mf.FakeHost([([mf.entry("active")], mf.picked_up())])
    result = run(host, env, fail_on=[], timeout=10)
    assert result["status"] == "deferred"
    assert result["reason"] == "still queued after 10s; no delivery attempt finished"
    assert 10 <= result["elapsed"] <= 11
    assert len(host.called("postqueue")) <= 13, "one look a second"


def test_a_refused_mail_is_bounced_with_the_relay_reply():
    reply = "host relay.example.org said: 550 5.7.1 sender not allowed (in reply to MAIL FROM command)"
    looks = [([], [*mf.picked_up(), mf.status_line("bounced", reply, dsn="5.7.1")])]
    result = failing(mf.FakeHost(looks))
    assert (result["status"], result["reason"]) == ("bounced", reply)


def test_without_a_log_the_queue_id_comes_from_the_marker_and_leaving_is_not_sent():
    host = mf.FakeHost(
        [
            ([mf.entry("maildrop", queue_id="4BBA724696B", sender="root")], []),
            ([mf.entry("active", queue_id="OTHER1"), mf.entry("active")], []),
            ([], []),
        ],
        before=[mf.entry("deferred", queue_id="OLD1")],
    )
    host.headers = {mf.QID: f"To: <{mf.RCPT}>\n{MARKER_HEADER}: {mf.MARKER}\n", "OTHER1": "To: x\n"}
    result = run(host, mf.env(journal=False), fail_on=[])
    assert (result["status"], result["queue_id"]) == ("unknown", mf.QID)
    delivery = by_id(result)["mail.delivery"]
    assert delivery["status"] == "warn"
    assert delivery["message"] == "the test mail left the queue; no mail log to tell sent from bounced"
    assert "maillog_file" in delivery["hint"]
    assert by_id(result)["mail.log"]["status"] == "warn"
    assert sorted(c[-1] for c in host.called("postcat")) == sorted(["OTHER1", mf.QID]), "each new entry asked once"
    assert not host.called("journalctl")


def test_without_a_log_a_mail_never_seen_is_not_called_sent():
    result = run(mf.FakeHost([([], [])]), mf.env(journal=False), fail_on=[])
    assert result["status"] == "unknown"
    assert by_id(result)["mail.delivery"]["status"] == "warn"
    assert result["elapsed"] <= GRACE + 1


def test_a_mail_log_file_is_read_from_where_it_ended(tmp_path):
    log = tmp_path / "mail.log"
    log.write_text(f"Dec  1 10:00:00 h1 postfix/cleanup[1]: OLDQID1: message-id=<{mf.MESSAGE_ID}>\n")
    host = mf.FakeHost([([], [])])

    def sendmail_then_log(args, data=None):
        result = mf.FakeHost.__call__(host, args, data)
        if args[0] == "sendmail":
            prefix = "Dec  2 12:00:00 h1 postfix/smtp[9]: "
            lines = [*mf.picked_up(), mf.status_line("sent", SENT_REPLY)]
            with log.open("a") as handle:
                handle.write("".join(prefix + line + "\n" for line in lines))
        return result

    params = {"rcpt_to": mf.RCPT}
    runner = PostconfRunner(sendmail_then_log)
    runner.postconf = lambda args, mask=str: (f"maillog_file = {log}\nmyhostname = {mf.HOSTNAME}\n", "")
    result = mt.mail_test(runner, params, env=mf.env(journal=False))
    assert (result["status"], result["queue_id"]) == ("sent", mf.QID), "the earlier line is not this mail's"
    assert by_id(result)["mail.log"]["message"] == f"mail log: {log}"


def test_postfix_not_running_sends_nothing():
    host = mf.FakeHost(running=False)
    result = failing(host)
    assert not host.called("sendmail")
    assert (result["status"], result["changed"], result["marker"]) == ("unknown", False, None)
    assert by_id(result)["mail.service"]["status"] == "fail"


def test_a_refused_submission_is_no_change():
    result = failing(mf.FakeHost(sendmail_rc=75))
    assert (result["status"], result["changed"]) == ("unknown", False)
    assert "no such thing" in by_id(result)["mail.submit"]["message"]


def test_check_mode_sends_nothing():
    host = mf.FakeHost()
    result = run(host, check_mode=True)
    assert (result["status"], result["changed"]) == ("skipped", False)
    assert not host.called("sendmail") and not host.called("postqueue")
    assert [c["status"] for c in result["checks"]] == ["skip"]


def test_postfix_missing_is_refused_without_a_submission():
    host = mf.FakeHost()
    runner = PostconfRunner(host, which=lambda name: None)
    with pytest.raises(SmtpRelayError, match="Postfix is not installed"):
        mt.mail_test(runner, {"rcpt_to": mf.RCPT}, env=mf.env())
    assert host.calls == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"rcpt_to": None}, "rcpt_to"),
        ({"rcpt_to": "ops@example.org\nBcc: x@example.org"}, "rcpt_to"),
        ({"rcpt_to": "ops@example.org, x@example.org"}, "rcpt_to"),
        ({"rcpt_to": "ops"}, "rcpt_to"),
        ({"mail_from": "a@b@"}, "mail_from"),
        ({"subject": "one\nBcc: x@example.org"}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 3601}, "timeout"),
        ({"nameservers": ["dns.example.org"]}, "nameservers"),
        ({"dns_port": 0}, "dns_port"),
        ({"fail_on": ["pass"]}, "fail_on"),
    ],
)
def test_bad_options_are_refused_by_name_before_anything_runs(params, field):
    host = mf.FakeHost()
    with pytest.raises(SmtpRelayError) as caught:
        run(host, **params)
    assert caught.value.details["field"] == field
    assert caught.value.msg.startswith(field)
    assert host.calls == []


def test_sender_check_runs_the_sender_engine_on_the_rewritten_sender():
    asked = []

    def senders(params):
        asked.append(params)
        checks = [{"id": "spf.record", "status": "pass", "stage": "spf", "message": "one SPF record", "hint": None}]
        return {"domains": {"example.org": {"checks": checks}}, "relay": {"checks": []}}

    looks = [([], mf.picked_up() + mf.queued() + [mf.status_line("sent", SENT_REPLY)])]
    result = run(mf.FakeHost(looks), mf.env(senders=senders), sender_check=True, nameservers=["192.0.2.53"])
    assert asked[0]["addresses"] == [mf.SENDER]
    assert asked[0]["relay_host"] == "[relay.example.org]:587", "SPF is evaluated for the host's relay"
    assert asked[0]["nameservers"] == ["192.0.2.53"]
    assert by_id(result)["spf.record"]["status"] == "pass"


def test_sender_check_with_the_real_engine_refuses_a_special_use_sender():
    looks = [([], mf.picked_up() + mf.queued(sender="noreply@campus.example.test") + [mf.status_line("sent", "250")])]
    env = mf.env()
    env.senders = lambda params: mt.check_senders({**params, "relay_host": None})  # no DNS in unit tests
    result = failing(mf.FakeHost(looks), env, sender_check=True)
    assert result["status"] == "sent"
    assert by_id(result)["domain.special_use"]["status"] == "fail"


def test_sender_check_without_a_known_sender_is_skipped_not_guessed():
    result = run(mf.FakeHost(), check_mode=True, sender_check=True)
    assert by_id(result)["sender.checks"]["status"] == "skip"
