# SPDX-License-Identifier: GPL-3.0-or-later
"""Three hosts: forks equal to the host count, two role runs against one host at once, and a host that vanishes
while the role runs on all three.

Two runs at once must leave one run's complete configuration, never a mix: postfix_apply holds an exclusive
flock per host while it writes (the mechanism); these tests check the outcome only. The vanishing host is held in
the middle of the role's apply step (its lock taken by the test) and removed there, so the others have applied
their change and the removal hits a running module.
"""

from __future__ import annotations

import time

import pytest

from tests.integration import fleet
from tests.integration.faults import hosts

pytestmark = pytest.mark.peers

HOSTS = {f"smtprelay-faults-n{i}": f"n{i}.smtp-relay.test" for i in (1, 2, 3)}
N1, N2, N3 = HOSTS
FORKS = ("--forks", str(len(HOSTS)))
# The lock postfix_apply documents for config_dir /etc/postfix.
APPLY_LOCK = "/run/lock/smtp-relay-postfix-etc-postfix.lock"


@pytest.fixture(scope="module")
def fleet3(tmp_path_factory):
    with hosts.hosts_started(HOSTS) as started:
        rc, changed, output = hosts.configure(tmp_path_factory.mktemp("converge"), started, hosts.relay_vars(), *FORKS)
        yield {"rc": rc, "changed": changed, "output": output}


def test_forks_equal_to_the_host_count_converge_all_and_stay_idempotent(fleet3, tmp_path):
    assert fleet3["rc"] == 0, fleet3["output"]
    assert all(fleet3["changed"][h] for h in HOSTS), fleet3["changed"]
    rc, changed, output = hosts.configure(tmp_path, list(HOSTS), hosts.relay_vars(), *FORKS)
    assert (rc, changed) == (0, {h: [] for h in HOSTS}), output
    relayhost = f"[relay.smtp-relay.test]:{hosts.relay_vars()['postfix_relay_port']}"
    for host in HOSTS:
        assert hosts.postconf_value(host, "relayhost") == relayhost
    subjects = hosts.burst_subjects("forks", len(HOSTS))
    for host, subject in zip(HOSTS, subjects, strict=True):
        hosts.send_mails(host, [subject])
    seen = hosts.wait_for_all(N1, subjects, timeout=60, settle=1)
    assert set(seen) == set(subjects)


# Two states that differ in main.cf (port, TLS mode) and in both maps (their keys, the sender rewrite).
STATES = {
    "starttls": {"postfix_sender_address": "noreply-a@campus.smtp-relay.test"},
    "implicit": {
        "postfix_relay_port": 30002,
        "postfix_relay_tls": "implicit",
        "postfix_sender_address": "noreply-b@campus.smtp-relay.test",
    },
}


RACE_ROUNDS = 3


def effective_state(host: str) -> str:
    """main.cf as Postfix reads it, and both maps as their indexed forms answer (postmap -s dumps them)."""
    script = (
        "set -e; postconf -n; for m in sasl_passwd sender_canonical; do "
        'echo "== $m"; postmap -s hash:/etc/postfix/$m | sort | sha256sum; sort /etc/postfix/$m | sha256sum; done'
    )
    return fleet.on_host(host, "sh", "-c", script)


def table(text: str) -> dict:
    """A lookup table's lines (source or ``postmap -s`` dump) as {key: value}; comments left out."""
    pairs = (line.split(None, 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {key: value.strip() for key, value in pairs}


def assert_complete(host: str) -> None:
    """main.cf is valid, and each map's index holds exactly its source's entries: no half-written table."""
    fleet.on_host(host, "postconf", "-n")
    for name in ("sasl_passwd", "sender_canonical"):
        source = table(fleet.on_host(host, "cat", f"/etc/postfix/{name}"))
        indexed = table(fleet.on_host(host, "postmap", "-s", f"hash:/etc/postfix/{name}"))
        assert source and indexed == source, f"{name}: the index does not hold the source's entries"


def test_two_runs_at_once_leave_one_complete_state(fleet3, tmp_path):
    assert fleet3["rc"] == 0, fleet3["output"]
    wanted = {}
    for name, overrides in STATES.items():
        rc, _changed, output = hosts.configure(tmp_path / name, [N1], hosts.relay_vars(**overrides))
        assert rc == 0, output
        wanted[name] = effective_state(N1)
    assert wanted["starttls"] != wanted["implicit"]
    outcomes = []
    for round_number in range(RACE_ROUNDS):
        runs = {
            name: hosts.start_play(
                tmp_path / f"race{round_number}-{name}", [N1], "smtp.relay.configure", hosts.relay_vars(**overrides)
            )
            for name, overrides in STATES.items()
        }
        for name, process in runs.items():
            rc, _document, output = hosts.finish_play(process)
            assert rc == 0, f"{name}: {output}"
        assert_complete(N1)
        found = effective_state(N1)
        matches = [name for name, state in wanted.items() if state == found]
        assert len(matches) == 1, f"round {round_number}: a mix of both runs:\n{found}"
        outcomes.append(matches[0])
    print(f"two runs at once, {RACE_ROUNDS} rounds: the host ended in states {outcomes}")
    subjects = hosts.burst_subjects("after two runs at once", 1)
    hosts.send_mails(N1, subjects)
    assert hosts.wait_for_all(N1, subjects, timeout=60, settle=1)[subjects[0]] == 1


def test_a_host_vanishing_mid_run_fails_alone(fleet3, tmp_path):
    assert fleet3["rc"] == 0, fleet3["output"]
    # Hold N3 inside the role's apply step: its postfix_apply waits for the lock the test holds.
    fleet.podman("exec", "-d", N3, "flock", APPLY_LOCK, "sleep", "600")
    time.sleep(1)
    changed_setting = hosts.relay_vars(postfix_rate_delay="1s")
    process = hosts.start_play(tmp_path, list(HOSTS), "smtp.relay.configure", changed_setting, *FORKS)
    try:
        deadline = time.monotonic() + 120
        while not all(hosts.postconf_value(h, "smtp_destination_rate_delay") == "1s" for h in (N1, N2)):
            assert process.poll() is None, "the run ended before the host vanished"
            assert time.monotonic() < deadline, "the other hosts were not configured"
            time.sleep(0.5)
        assert process.poll() is None, "the run must still be waiting on the held host"
        fleet.remove_host(N3)
        rc, document, output = hosts.finish_play(process, timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    stats = hosts.recap(document)
    reported = [
        result.get("msg", "")
        for one_play in document["plays"]
        for task in one_play["tasks"]
        for host, result in task["hosts"].items()
        if host == N3 and (result.get("failed") or result.get("unreachable"))
    ]
    print(f"PLAY RECAP {stats}; reported for the vanished host: {reported}")
    assert rc != 0, output
    assert stats[N3]["unreachable"] + stats[N3]["failures"] >= 1, stats
    assert reported, "the vanished host's failure must be in the results"
    for host in (N1, N2):
        assert (stats[host]["unreachable"], stats[host]["failures"]) == (0, 0), stats
        assert hosts.postconf_value(host, "smtp_destination_rate_delay") == "1s"
        assert_complete(host)
