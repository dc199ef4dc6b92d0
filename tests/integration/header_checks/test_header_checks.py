# SPDX-License-Identifier: GPL-3.0-or-later
"""postfix_header_checks on a real host: headers that leak internal names leave the host removed or rewritten, as
the lab relay's records show; a pattern Postfix refuses leaves the host as it was; reruns change nothing and check
mode predicts. One host serves the module; it is removed even when a test fails.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-headers-h1"
TABLE = "/etc/postfix/smtp_header_checks"
RULES = [
    {"pattern": "/^X-Internal-Host:/", "action": "IGNORE"},
    {"pattern": "/^X-Originating-IP:/", "action": "REPLACE X-Originating-IP: [redacted]"},
]


@pytest.fixture(scope="module")
def host():
    fleet.start_host(HOST, "hc1.smtp-relay.test")
    yield HOST
    fleet.remove_host(HOST)


@pytest.fixture(scope="module")
def configured(host, tmp_path_factory):
    """The host relaying through the campus listener, with no header checks yet."""
    rc, _changed, output = play(tmp_path_factory.mktemp("converge"), fleet.campus_vars())
    assert rc == 0, output
    return host


def play(tmp_path, variables, check_mode=False):
    rc, changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", variables, check_mode=check_mode)
    return rc, changed[HOST], output


def send(subject: str) -> dict:
    """A mail carrying the headers the rules act on, and one they leave alone; its record at the relay."""
    message = (
        f"Subject: {subject}\\nX-Internal-Host: build7.corp.internal\\nX-Originating-IP: 10.1.2.3\\n"
        "X-Kept: yes\\n\\nbuild finished\\n"
    )
    fleet.podman("exec", HOST, "sh", "-c", f"printf '{message}' | /usr/sbin/sendmail -i ops@smtp-relay.test")
    return records.wait_for(lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, 90)


def test_check_mode_predicts_then_the_run_applies_and_a_rerun_changes_nothing(configured, tmp_path):
    before = fleet.host_state(configured)
    rc, predicted, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=RULES), check_mode=True)
    assert rc == 0, output
    assert predicted, "check mode must predict the change"
    assert fleet.host_state(configured) == before, "check mode changed the host"

    rc, changed, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=RULES))
    assert rc == 0, output
    assert changed == predicted
    assert fleet.on_host(configured, "postconf", "-h", "smtp_header_checks").strip() == f"regexp:{TABLE}"
    assert fleet.on_host(configured, "cat", TABLE).splitlines()[1:] == [
        "/^X-Internal-Host:/ IGNORE",
        "/^X-Originating-IP:/ REPLACE X-Originating-IP: [redacted]",
    ]
    assert fleet.on_host(configured, "postmap", "-q", "X-Internal-Host: a", f"regexp:{TABLE}").strip() == "IGNORE"

    rc, again, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=RULES))
    assert (rc, again) == (0, []), output
    rc, predicted, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=RULES), check_mode=True)
    assert (rc, predicted) == (0, []), output


def test_mail_reaches_the_relay_without_the_internal_headers(configured, tmp_path):
    rc, _changed, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=RULES))
    assert rc == 0, output
    headers = records.headers(send(f"header checks {time.time()}"))
    assert headers["X-Internal-Host"] is None, "IGNORE removes the header"
    assert headers.get_all("X-Originating-IP") == ["[redacted]"], "REPLACE rewrites it"
    assert headers["X-Kept"] == "yes", "other headers pass unchanged"


def test_a_pattern_postfix_refuses_leaves_the_host_unchanged(configured, tmp_path):
    rc, _changed, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=RULES))
    assert rc == 0, output
    before = fleet.host_state(configured)
    # The shape is right (the controller lets it through); POSIX regcomp refuses the open bracket.
    refused = [RULES[0], {"pattern": "/^X-Build-[/", "action": "IGNORE"}]
    rc, changed, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=refused))
    assert rc != 0, output
    failures = fleet.failures(output)
    assert "entries[1]: Postfix refuses '/^X-Build-[/'" in failures, failures
    assert "Traceback" not in output
    assert changed == []
    assert fleet.host_state(configured) == before


def test_an_action_the_smtp_client_lacks_is_refused_before_the_host_is_touched(configured, tmp_path):
    before = fleet.host_state(configured)
    refused = [RULES[0], {"pattern": "/^Subject:.*spam/", "action": "REJECT no spam"}]
    rc, changed, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=refused))
    assert rc != 0, output
    assert "postfix_header_checks[1].action: 'REJECT no spam' is not an action" in fleet.failures(output), output
    assert changed == []
    assert fleet.host_state(configured) == before


def test_emptying_the_variable_removes_the_table_and_the_parameter(configured, tmp_path):
    rc, _changed, output = play(tmp_path, fleet.campus_vars(postfix_header_checks=RULES))
    assert rc == 0, output
    rc, changed, output = play(tmp_path, fleet.campus_vars())
    assert (rc, bool(changed)) == (0, True), output
    assert fleet.on_host(configured, "postconf", "-n", "smtp_header_checks").strip() == ""
    assert fleet.podman("exec", configured, "test", "-e", TABLE, check=False).returncode == 1
    headers = records.headers(send(f"no header checks {time.time()}"))
    assert headers["X-Internal-Host"] == "build7.corp.internal"


def test_postfix_map_writes_regexp_tables_that_postfix_read_first(configured, tmp_path):
    del configured
    playbook = str(Path(__file__).parent / "postfix_map_regexp.yml")
    rc, _changed, output = fleet.play(tmp_path, [HOST], playbook, {})
    assert rc == 0, output
    assert "Traceback" not in output
