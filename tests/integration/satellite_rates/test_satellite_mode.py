# SPDX-License-Identifier: GPL-3.0-or-later
"""postfix_mode: satellite on a real host, with mail arriving at the lab relay, compared with null_client.

- Switching a null client to satellite: check mode predicts the real run; a rerun and a check run change nothing.
- A satellite keeps local aliases: mail for ``webmaster`` (an alias in /etc/aliases) reaches the relay for the
  aliased address; root's mail still goes to postfix_local_mail_to; mail for other domains goes to the relay as is.
- A null client does not use the alias (``webmaster`` leaves as webmaster@<myorigin>), root's mail still goes to
  postfix_local_mail_to, and switching back leaves the same effective main.cf as before satellite.
- The role builds /etc/aliases.db, which Debian's "No configuration" install does not make (without it every local
  delivery of a satellite is deferred with "alias database unavailable"), and builds it again, reloading Postfix,
  when /etc/aliases is newer: an operator's edit takes effect with the next run, check mode predicting it.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-satellite-h1"
FQDN = "sat1.smtp-relay.test"
OPS = "ops@campus.smtp-relay.test"
WEBTEAM = "webteam@campus.smtp-relay.test"
OTHER = "colleague@smtp-relay.test"
# The operator's aliases, in place before the role runs (as a configuration-management step would leave them).
ALIASES = f"postmaster: root\nwebmaster: {WEBTEAM}\n"
SATELLITE_ONLY = {
    "mydestination": "$myhostname, localhost.$mydomain, localhost",
    "alias_maps": "hash:/etc/aliases",
}


@pytest.fixture(scope="module")
def host():
    fleet.start_host(HOST, FQDN)
    fleet.podman("exec", HOST, "sh", "-c", f"printf '{ALIASES}' > /etc/aliases")
    yield HOST
    fleet.remove_host(HOST)


@pytest.fixture(scope="module")
def null_client_config(host, tmp_path_factory):
    """The host as a null client first: its effective main.cf (``postconf -n``) is what switching back must give."""
    rc, _changed, output = play(tmp_path_factory.mktemp("null"), wanted("null_client"))
    assert rc == 0, output
    return effective_main_cf()


def wanted(mode: str) -> dict:
    return fleet.campus_vars(postfix_mode=mode, postfix_local_mail_to=OPS)


def play(tmp_path, variables, check_mode=False):
    rc, changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", variables, check_mode=check_mode)
    return rc, changed[HOST], output


def effective_main_cf() -> list[str]:
    return sorted(fleet.on_host(HOST, "postconf", "-n").splitlines())


def parameter(name: str) -> str:
    return fleet.on_host(HOST, "postconf", "-h", name).strip()


def send(recipient: str, label: str) -> str:
    """Mail a bare local name or an address the way cron and scripts do (sendmail, From: root); return the subject."""
    subject = f"satellite {label} {time.time()}"
    script = f"printf 'From: root\\nSubject: {subject}\\n\\nsatellite test\\n' | /usr/sbin/sendmail -i {recipient}"
    fleet.podman("exec", HOST, "sh", "-c", script)
    return subject


def arrived(subject: str) -> dict:
    return records.wait_for(
        lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=90
    )


def test_switch_to_satellite_is_predicted_and_idempotent(tmp_path, null_client_config):
    assert parameter("mydestination") == ""
    rc, predicted, output = play(tmp_path, wanted("satellite"), check_mode=True)
    assert rc == 0, output
    assert predicted, "switching a null client to satellite must report a change in check mode"
    assert effective_main_cf() == null_client_config, "check mode changed main.cf"
    rc, changed, output = play(tmp_path, wanted("satellite"))
    assert rc == 0, output
    assert changed == predicted, "check mode must predict the real run"
    rc, again, output = play(tmp_path, wanted("satellite"))
    assert (rc, again) == (0, []), output
    rc, checked, output = play(tmp_path, wanted("satellite"), check_mode=True)
    assert (rc, checked) == (0, []), output

    for name, value in SATELLITE_ONLY.items():
        assert parameter(name) == value, name
    # Local delivery is Postfix's own local(8) again, not the null client's error transport.
    assert parameter("local_transport") == "local:$myhostname"
    assert "local_transport" not in fleet.on_host(HOST, "postconf", "-n", "local_transport")


def test_aliases_work_without_newaliases(tmp_path, null_client_config):
    rc, _changed, output = play(tmp_path, wanted("satellite"))
    assert rc == 0, output
    subject, records_dir = send("webmaster", "before newaliases"), lab.info()["relay"]["records_dir"]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(records.headers(r)["Subject"] == subject for r in records.messages(records_dir)):
                return
            queue = fleet.on_host(HOST, "postqueue", "-j")
            assert "alias database unavailable" not in queue, queue
            time.sleep(1)
        pytest.fail(f"neither delivered nor deferred: {fleet.on_host(HOST, 'postqueue', '-p')}")
    finally:
        fleet.on_host(HOST, "postsuper", "-d", "ALL")


def test_satellite_keeps_local_aliases(tmp_path, null_client_config):
    rc, _changed, output = play(tmp_path, wanted("satellite"))
    assert rc == 0, output
    to_alias, to_root, to_other = send("webmaster", "alias"), send("root", "root"), send(OTHER, "other")
    assert arrived(to_alias)["rcpt_tos"] == [WEBTEAM], "the local alias expanded on the host"
    record = arrived(to_root)
    assert record["rcpt_tos"] == [OPS], "postfix_local_mail_to wins over local delivery for root"
    assert record["mail_from"] == fleet.SENDER
    assert arrived(to_other)["rcpt_tos"] == [OTHER]
    assert "webmaster" not in fleet.on_host(HOST, "postqueue", "-p"), "nothing left deferred on the host"


def test_null_client_ignores_the_alias_and_switching_back_leaves_nothing(tmp_path, null_client_config):
    rc, _changed, output = play(tmp_path, wanted("null_client"))
    assert rc == 0, output
    rc, checked, output = play(tmp_path, wanted("null_client"), check_mode=True)
    assert (rc, checked) == (0, []), output
    assert effective_main_cf() == null_client_config, "satellite left something in main.cf"
    assert parameter("local_transport").startswith("error:")

    to_alias, to_root = send("webmaster", "null alias"), send("root", "null root")
    assert arrived(to_alias)["rcpt_tos"] == [f"webmaster@{FQDN}"], "no local alias expansion on a null client"
    assert arrived(to_root)["rcpt_tos"] == [OPS]


def test_an_edited_aliases_file_is_built_by_the_next_run(tmp_path, null_client_config):
    rc, _changed, output = play(tmp_path, wanted("satellite"))
    assert rc == 0, output
    # The operator's edit, a second later than the database (modification times decide what is stale).
    fleet.podman("exec", HOST, "sh", "-c", f"sleep 1; printf 'helpdesk: {WEBTEAM}\\n' >> /etc/aliases")
    rc, predicted, output = play(tmp_path, wanted("satellite"), check_mode=True)
    assert rc == 0, output
    assert predicted, "check mode must predict the rebuild"
    rc, changed, output = play(tmp_path, wanted("satellite"))
    assert (rc, changed) == (0, predicted), output
    assert arrived(send("helpdesk", "edited aliases"))["rcpt_tos"] == [WEBTEAM]
    rc, again, output = play(tmp_path, wanted("satellite"))
    assert (rc, again) == (0, []), output
