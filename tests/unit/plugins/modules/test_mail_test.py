# SPDX-License-Identifier: GPL-3.0-or-later
"""The mail_test module: its argument spec, check mode, changed, and one fail_json carrying the whole result."""

from __future__ import annotations

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._postfix import maillog
from ansible_collections.smtp.relay.plugins.modules import mail_test
from tests.unit.plugins.module_utils import mail_fakes as mf

REFUSED = "connect to relay.example.org[192.0.2.25]:587: Connection refused"


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake host behind AnsibleModule.run_command, with a journal and a main.cf in a temporary directory."""
    (tmp_path / "main.cf").write_text("relayhost = [relay.example.org]:587\n")
    socket = tmp_path / "journal.socket"
    socket.write_text("")
    monkeypatch.setattr(maillog, "JOURNAL_SOCKET", str(socket))
    monkeypatch.setattr(maillog, "LOG_FILES", ())
    fake = mf.FakeHost()
    monkeypatch.setattr(AnsibleModule, "run_command", lambda self, args, data=None, **kw: fake(args, data))
    monkeypatch.setattr(AnsibleModule, "get_bin_path", lambda self, name, **kw: f"/usr/sbin/{name}")
    fake.config_dir = str(tmp_path)
    return fake


def args(host, **extra):
    return {"rcpt_to": mf.RCPT, "config_dir": host.config_dir, **extra}


def test_a_sent_mail_is_a_change_with_its_status(run_module, host):
    host.looks = [([], [*mf.picked_up(), mf.status_line("sent", "250 2.0.0 Ok")])]
    result = run_module(mail_test.main, args(host))
    assert not result.get("failed"), result
    assert (result["changed"], result["status"], result["reason"]) == (True, "sent", "250 2.0.0 Ok")
    assert host.called("sendmail")[0][1:3] == ["-C", host.config_dir]


def test_a_deferral_fails_the_task_with_the_whole_result(run_module, host):
    host.looks = [([mf.entry("deferred", reason=REFUSED)], mf.picked_up())]
    result = run_module(mail_test.main, args(host))
    assert result["failed"] is True
    assert (result["changed"], result["status"], result["reason"]) == (True, "deferred", REFUSED)
    assert REFUSED in result["msg"]
    assert {c["id"] for c in result["checks"]} >= {"mail.submit", "mail.delivery"}


def test_check_mode_sends_nothing_and_changes_nothing(run_module, host):
    result = run_module(mail_test.main, args(host), check_mode=True)
    assert (result["changed"], result["status"]) == (False, "skipped")
    assert not host.called("sendmail")


def test_a_bad_recipient_is_refused_by_name(run_module, host):
    result = run_module(mail_test.main, args(host, rcpt_to="ops@example.org\nBcc: all@example.org"))
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"].startswith("rcpt_to:") and result["field"] == "rcpt_to"
    assert host.calls == []
