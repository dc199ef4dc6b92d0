# SPDX-License-Identifier: GPL-3.0-or-later
"""The one plan on real containers: string booleans, a short host name, backup relays, and refusals.

- An INI inventory (every value a string) configures what it says.
- On a host whose name has no dot, root's cron mail leaves with the approved sender (seen at the relay).
- With the primary relay down, a backup relay with AUTH receives the mail.
- Every bad input is refused before anything on the host changes (Postfix's files, the mail name, the
  package and the service compared before and after), with a message naming the role variable.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

SHORT = "smtprelay-plan-vm"
BACKUP = "smtprelay-plan-b1"
SENDER = fleet.SENDER
DOWN_PORT = 2999  # nothing listens there: the primary relay is down


@pytest.fixture(scope="module")
def peers():
    return lab.info()


@pytest.fixture(scope="module")
def short_host():
    fleet.start_host(SHORT, "vm")
    yield SHORT
    fleet.remove_host(SHORT)


@pytest.fixture(scope="module")
def backup_host():
    fleet.start_host(BACKUP, "b1.smtp-relay.test")
    yield BACKUP
    fleet.remove_host(BACKUP)


def campus_vars(peers, **overrides):
    return fleet.campus_vars(**overrides)


def configure(tmp_path, host, variables, **kwargs):
    return fleet.play(tmp_path, [host], "smtp.relay.configure", variables, **kwargs)


def wait_subject(subject, timeout=120):
    return records.wait_for(
        lab.info()["relay"]["records_dir"], lambda r: records.headers(r)["Subject"] == subject, timeout=timeout
    )


def test_refused_on_a_fresh_host_installs_nothing(tmp_path, peers, short_host):
    before = fleet.host_state(short_host)
    rc, changed, output = configure(tmp_path, short_host, campus_vars(peers, postfix_rate_delay="1s\nrelayhost = x"))
    assert rc != 0
    assert changed == {short_host: []}
    assert "postfix_rate_delay" in fleet.failures(output), output
    assert fleet.host_state(short_host) == before
    assert "not-installed" in before or "no packages found" in before


def test_ini_inventory_strings_mean_what_they_say(tmp_path, peers, short_host):
    relay = peers["relay"]
    inventory = fleet.ini_inventory(
        tmp_path,
        [short_host],
        {
            "postfix_relay_host": relay["host"],
            "postfix_relay_port": str(relay["ports"]["campus"]),
            "postfix_relay_mx_lookup": "false",
            "postfix_relay_tls_verify": "false",
            "postfix_sender_address": SENDER,
            "postfix_allowed_sender_domains": "campus.smtp-relay.test",  # a string: Ansible splits it into a list
        },
    )
    rc, _changed, output = configure(tmp_path, short_host, {}, inventory=inventory)
    assert rc == 0, output
    got = fleet.on_host(short_host, "postconf", "-h", "relayhost", "smtp_tls_security_level", "myhostname")
    assert got.split("\n")[:3] == [f"[{relay['host']}]:{relay['ports']['campus']}", "encrypt", "vm.localdomain"]


def test_short_host_name_roots_cron_mail_leaves_with_the_approved_sender(tmp_path, peers, short_host):
    rc, _changed, output = configure(tmp_path, short_host, campus_vars(peers))
    assert rc == 0, output
    assert fleet.on_host(short_host, "postconf", "-h", "myhostname").strip() == "vm.localdomain"
    assert fleet.on_host(short_host, "cat", "/etc/mailname").strip() == "vm.localdomain"
    # Real cron: its mail to root carries root@$myorigin, which Postfix (not Ansible's facts) decides.
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cron >/dev/null"
    fleet.podman("exec", short_host, "sh", "-c", install)
    marker = f"cron-{time.time()}"
    job = f"* * * * * root echo {marker}\n"
    fleet.podman("exec", short_host, "sh", "-c", f"printf '{job}' > /etc/cron.d/smtprelay && systemctl restart cron")
    record = records.wait_for(lab.info()["relay"]["records_dir"], lambda r: marker in r["data"], timeout=150)
    assert record["listener"] == "campus"
    assert record["mail_from"] == SENDER
    assert records.headers(record)["From"].addresses[0].addr_spec == SENDER


def test_backup_relay_authenticates_when_the_primary_is_down(tmp_path, peers, backup_host):
    relay = peers["relay"]
    variables = campus_vars(
        peers,
        postfix_relay_port=DOWN_PORT,
        postfix_relay_tls="starttls",
        postfix_relay_backup_hosts=[{"host": relay["host"], "port": relay["ports"]["submission"]}],
        postfix_relay_username=relay["username"],
        postfix_relay_password=relay["password"],
    )
    rc, _changed, output = configure(tmp_path, backup_host, variables)
    assert rc == 0, output
    rc, again, output = configure(tmp_path, backup_host, variables)
    assert (rc, again) == (0, {backup_host: []}), output
    keys = fleet.on_host(backup_host, "sh", "-c", "cut -d' ' -f1 /etc/postfix/sasl_passwd | grep -v '^#'").split()
    assert keys == sorted([f"[{relay['host']}]:{DOWN_PORT}", f"[{relay['host']}]:{relay['ports']['submission']}"])
    subject = f"backup {time.time()}"
    send = f"printf 'Subject: {subject}\\n\\nx\\n' | sendmail -t ops@smtp-relay.test"
    fleet.podman("exec", backup_host, "sh", "-c", send)
    record = wait_subject(subject)
    assert record["listener"] == "submission"
    assert record["auth_user"] == relay["username"]
    assert record["mail_from"] == SENDER


SASL = "sasl"  # a marker: the case needs the lab's credentials


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        # 3. postfix_main_cf is judged with the rest of the plan
        ({"postfix_relay_port": 465, "postfix_main_cf": {"smtp_tls_wrappermode": "no"}}, "postfix_main_cf"),
        ({SASL: True, "postfix_main_cf": {"smtp_tls_security_level": "none"}}, "postfix_main_cf"),
        ({"postfix_main_cf": {"relayhost": "[evil.example]:25"}}, "postfix_main_cf.relayhost"),
        # 4. nothing Postfix would split into two lines
        ({"postfix_myorigin": "campus.smtp-relay.test\u2028relayhost = [evil.example]:25"}, "postfix_myorigin"),
        ({"postfix_main_cf": {"smtpd_banner": "hi\u2028relayhost = [evil.example]:25"}}, "postfix_main_cf"),
        ({"postfix_main_cf": {"smtpd_banner\n": "x"}}, "postfix_main_cf"),
        ({"postfix_sender_canonical": {"@vm": "a@campus.smtp-relay.test\x85x"}}, "postfix_sender_canonical"),
        ({"postfix_relay_ca_file": "/etc/ca.pem\u2029x"}, "postfix_relay_ca_file"),
        ({SASL: True, "postfix_relay_password": "half\u2028other-half"}, "postfix_relay_password"),
        # 5. refused by the plan, not by postconf or postfix_map after the install
        ({"postfix_rate_delay": "1s\nrelayhost = [evil.example]"}, "postfix_rate_delay"),
        ({"postfix_sender_canonical": {"root user": "a@campus.smtp-relay.test"}}, "postfix_sender_canonical"),
        # 6. choices checked by the shared argument spec
        ({"postfix_relay_tls": "bogus"}, "postfix_relay_tls"),
        # 7. a host name Postfix would not use as is
        ({"postfix_myhostname": "vm"}, "postfix_myhostname"),
        # 8. backups are planned like the primary
        ({"postfix_relay_backup_hosts": [{"host": "[x.example]:25"}]}, "postfix_relay_backup_hosts"),
    ],
)
def test_bad_input_refused_before_the_host_changes(tmp_path, peers, short_host, overrides, variable):
    overrides = dict(overrides)
    if overrides.pop(SASL, False):
        overrides = {
            "postfix_relay_username": peers["relay"]["username"],
            "postfix_relay_password": peers["relay"]["password"],
            **overrides,
        }
    before = fleet.host_state(short_host)
    rc, changed, output = configure(tmp_path, short_host, campus_vars(peers, **overrides))
    assert rc != 0
    assert changed == {short_host: []}
    assert variable in fleet.failures(output), output
    assert "other-half" not in output
    assert peers["relay"]["password"] not in output
    assert fleet.host_state(short_host) == before
