# SPDX-License-Identifier: GPL-3.0-or-later
"""smtp.relay.postconf and smtp.relay.postfix_map against real Postfix on two systemd containers: one installed with
Debian's "No configuration" (no main.cf at all), one with the default "Internet Site" main.cf.

The hosts are prepared (prepare.yml) and converged to a null client (converge.yml) once for the module; a second
converge and a check run must change nothing. postconf.yml and postfix_map.yml then exercise every promise of the
two modules on a scratch copy of the configuration as the package left it, once for all the tests that read them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.integration import fleet, playbooks

pytestmark = pytest.mark.peers

HERE = Path(__file__).resolve().parent
SCRATCH = "/etc/postfix-t"
PASSWORD = "S3cret-Modules-Value"
# name: (FQDN, the answer to Debian's "General type of mail configuration")
HOSTS = {
    "smtprelay-modules-noconf": ("noconf.smtp-relay.test", "No configuration"),
    "smtprelay-modules-site": ("site.smtp-relay.test", "Internet Site"),
}
NULL_CLIENT = {
    "compatibility_level": "3.6",
    "relayhost": "[relay.smtp-relay.test]:587",
    "inet_interfaces": "loopback-only",
    "inet_protocols": "all",
    "mydestination": "",
    "myorigin": "smtp-relay.test",
    "local_transport": "error: local delivery is disabled",
    "alias_maps": "",
    "alias_database": "",
    "smtp_tls_security_level": "encrypt",
    "smtp_sasl_auth_enable": True,
    "smtp_sasl_password_maps": "hash:/etc/postfix/sasl_passwd",
    "smtp_sasl_security_options": ["noanonymous"],
    "sender_canonical_maps": "texthash:/etc/postfix/sender_canonical",
    "smtpd_relay_restrictions": None,
}
each_host = pytest.mark.parametrize("host", list(HOSTS))


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    host_vars = {
        name: {"ansible_connection": "containers.podman.podman", "mailer_type": mailer}
        for name, (_fqdn, mailer) in HOSTS.items()
    }
    variables = {"null_client": NULL_CLIENT, "relay_password": PASSWORD}
    return playbooks.inventory(tmp_path_factory.mktemp("inventory"), host_vars, variables=variables)


@pytest.fixture(scope="module")
def run(tmp_path_factory, inventory):
    def run_playbook(name, check_mode=False) -> playbooks.Run:
        workdir = tmp_path_factory.mktemp(Path(name).stem)
        return playbooks.run(workdir, HOSTS, HERE / name, inventory=inventory, check_mode=check_mode)

    return run_playbook


@pytest.fixture(scope="module")
def converged(run):
    """Both hosts, Postfix installed the Debian way, converged to a null client."""
    try:
        for name, (fqdn, _mailer) in HOSTS.items():
            fleet.start_host(name, fqdn)
        prepared = run("prepare.yml")
        assert prepared.rc == 0, prepared.output
        first = run("converge.yml")
        assert first.rc == 0, first.output
        assert all(first.changed.values()), first.changed
        yield first
    finally:
        for name in HOSTS:
            fleet.remove_host(name)


@pytest.fixture(scope="module")
def postconf(converged, run):
    done = run("postconf.yml")
    assert done.rc == 0, done.output
    return done


@pytest.fixture(scope="module")
def postfix_map(postconf, run):
    done = run("postfix_map.yml")
    assert done.rc == 0, done.output
    return done


def shown(done, name, host):
    """The registered result ``name`` as its debug task shows it (the module's task itself has no_log)."""
    return done.result(f"Show {name}", host)[name]


# The converge, as molecule's idempotence and check steps ran it.


def test_second_converge_changes_nothing(converged, run):
    again = run("converge.yml")
    assert again.rc == 0, again.output
    assert again.changed == {name: [] for name in HOSTS}


def test_check_run_changes_nothing(converged, run):
    checked = run("converge.yml", check_mode=True)
    assert checked.rc == 0, checked.output
    assert checked.changed == {name: [] for name in HOSTS}


# smtp.relay.postconf


@each_host
def test_check_mode_predicts_the_change_and_writes_nothing(postconf, host):
    predicted = postconf.result("Predict in check mode", host)
    assert predicted["changed"]
    assert predicted["restart_required"]
    after = predicted["diff"]["after"].splitlines()
    assert "relayhost = [relay.smtp-relay.test]:587" in after
    assert "inet_interfaces = loopback-only" in after
    installed = postconf.result("Stat main.cf as installed", host)["stat"]
    after_check = postconf.result("Stat main.cf after check mode", host)["stat"]
    assert after_check["exists"] == installed["exists"]
    assert after_check.get("checksum", "") == installed.get("checksum", "")


@each_host
def test_the_diff_header_shows_the_installed_state(postconf, host):
    header = postconf.result("Predict in check mode", host)["diff"]["before_header"]
    assert ("absent" in header) == (HOSTS[host][1] == "No configuration"), header


@each_host
def test_one_call_does_what_check_mode_predicted(postconf, host):
    predicted = postconf.result("Predict in check mode", host)
    applied = postconf.result("Set many parameters in one call", host)
    assert applied["changed"]
    assert applied["restart_required"]
    assert applied["changed_parameters"] == predicted["changed_parameters"]
    assert applied["diff"]["after"] == predicted["diff"]["after"]
    assert applied["diff"]["before"] != applied["diff"]["after"]


@each_host
def test_postfix_sees_the_values_set(postconf, host):
    assert postconf.result("Read the effective values of the new configuration", host)["stdout_lines"] == [
        "relayhost = [relay.smtp-relay.test]:587",
        "inet_interfaces = loopback-only",
        "smtp_sasl_auth_enable = yes",
        "mydestination =",
    ]


@each_host
def test_the_same_call_again_changes_nothing(postconf, host):
    repeated = postconf.result("Repeat the same call", host)
    assert repeated["changed"] is False
    assert not repeated["restart_required"]
    assert repeated["changed_parameters"] == []


@each_host
@pytest.mark.parametrize(
    ("index", "says"),
    [(0, "did you mean relayhost"), (1, "line break or control character"), (2, "bad boolean configuration")],
    ids=["misspelt name", "newline in a value", "boolean as the string true"],
)
def test_bad_settings_are_refused_saying_why(postconf, host, index, says):
    refused = postconf.items("Try settings that must be refused", host)[index]
    assert refused["changed"] is False
    assert re.search(says, refused.get("msg", "")), refused


@each_host
def test_refused_settings_leave_main_cf_byte_identical(postconf, host):
    configured = postconf.result("Stat main.cf as configured", host)["stat"]
    after = postconf.result("Stat main.cf after the refused calls", host)["stat"]
    assert after["checksum"] == configured["checksum"]


@each_host
def test_null_removes_a_parameter_without_a_restart(postconf, host):
    removed = postconf.result("Remove a parameter with null", host)
    assert removed["changed"]
    assert not removed["restart_required"]
    nondefault = postconf.result("List the parameters set", host)["stdout"]
    assert "smtp_sasl_security_options" not in nondefault
    assert "relayhost = [relay.smtp-relay.test]:587" in nondefault.splitlines()


# smtp.relay.postfix_map


@each_host
def test_a_secret_map_and_its_index_are_0600_root_with_the_default_type(postfix_map, host):
    written = shown(postfix_map, "secret_map", host)
    assert written["changed"]
    assert written["map"] == f"hash:{SCRATCH}/sasl_passwd"
    stats = [item["stat"] for item in postfix_map.items("Stat the secret map and its index", host)]
    assert [s["mode"] for s in stats] == ["0600", "0600"]
    assert [s["pw_name"] for s in stats] == ["root", "root"]


@each_host
def test_the_secret_is_masked_in_the_result_and_diff(postfix_map, host):
    written = shown(postfix_map, "secret_map", host)
    assert PASSWORD not in json.dumps(written)
    assert "[relay.smtp-relay.test]:587 ********" in written["diff"]["after"]


@each_host
def test_postmap_finds_the_credentials(postfix_map, host):
    found = postfix_map.result("Look the credentials up as Postfix would", host)["stdout"]
    assert found == f"relayuser:{PASSWORD}"


@each_host
def test_unchanged_content_is_left_alone(postfix_map, host):
    assert shown(postfix_map, "secret_again", host)["changed"] is False


@each_host
def test_a_missing_index_is_rebuilt(postfix_map, host):
    assert shown(postfix_map, "secret_rebuilt", host)["changed"]
    index = postfix_map.result("Stat the rebuilt index", host)["stat"]
    assert index["exists"]
    assert index["mode"] == "0600"


@each_host
def test_check_mode_predicts_a_password_change_and_writes_nothing(postfix_map, host):
    predicted = shown(postfix_map, "secret_predicted", host)
    assert predicted["changed"]
    assert "(changed)" in predicted["diff"]["after"]
    assert "another-password" not in json.dumps(predicted)
    source = postfix_map.items("Stat the secret map and its index", host)[0]["stat"]
    assert postfix_map.result("Stat the source after check mode", host)["stat"]["checksum"] == source["checksum"]


@each_host
def test_only_the_lmdb_map_gets_an_index_and_no_backup_is_left(postfix_map, host):
    maps = [item["map"] for item in postfix_map.items("Write a texthash map and an lmdb map", host)]
    assert maps == [f"texthash:{SCRATCH}/sender_canonical", f"lmdb:{SCRATCH}/generic"]
    found = postfix_map.result("Look for index, backup and temporary files", host)["files"]
    assert [f["path"] for f in found] == [f"{SCRATCH}/generic.lmdb"]


@each_host
def test_postfix_accepts_the_scratch_configuration(postfix_map, host):
    checked = postfix_map.result("Check the scratch configuration as Postfix does", host)
    assert checked["rc"] == 0, checked["stderr"]


# The live configuration converge made


@each_host
def test_postfix_accepts_the_live_configuration(converged, host):
    checked = fleet.podman("exec", host, "postfix", "check", check=False)
    assert checked.returncode == 0, checked.stderr


@each_host
def test_the_host_is_a_null_client_of_the_relay(converged, host):
    names = ("relayhost", "inet_interfaces", "smtp_sasl_password_maps", "default_database_type")
    assert fleet.on_host(host, "postconf", "-h", *names).splitlines() == [
        "[relay.smtp-relay.test]:587",
        "loopback-only",
        "hash:/etc/postfix/sasl_passwd",
        "hash",
    ]


@each_host
def test_the_live_credentials_are_locked_away(converged, host):
    modes = fleet.on_host(host, "stat", "-c", "%a %U", "/etc/postfix/sasl_passwd", "/etc/postfix/sasl_passwd.db")
    assert modes.splitlines() == ["600 root", "600 root"]


@each_host
def test_postfix_runs(converged, host):
    state = fleet.on_host(host, "systemctl", "show", "--property=ActiveState", "--value", "postfix@-")
    assert state.strip() == "active"
