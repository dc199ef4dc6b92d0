# SPDX-License-Identifier: GPL-3.0-or-later
"""postfix_rate_delay and postfix_relay_concurrency, seen in the lab relay's arrival times and sessions.

A burst of mails queued at once on a null client:
- without limits, Postfix delivers in parallel: some arrive closer together than any rate delay allows, and
  sessions overlap;
- with ``postfix_rate_delay: 2s`` (smtp_destination_rate_delay) every mail arrives more than 1 s after the one
  before, and deliveries never overlap. The rate delay is a pause between the end of one delivery and the start of
  the next to the same destination (here the relayhost, whatever the recipient's domain), so it also makes the
  concurrency 1. The queue manager's timers count whole seconds (events.c: ``when = time() + delay``): when it
  wakes for something else meanwhile, a 2 s pause can be just over 1 s. So more than 1 s is asserted; the lab
  usually sees 2.01 s;
- with ``postfix_relay_concurrency: 1`` and no delay, deliveries never overlap either, yet some mails arrive closer
  together than a rate delay would allow: a concurrency limit is not a delay.
Sessions are read from the relay's log: each session's span from connect to its last accepted message.
"""

from __future__ import annotations

import datetime
import itertools
import re
import time
from pathlib import Path

import pytest

from tests.integration import fleet
from tests.peers import lab, records

pytestmark = pytest.mark.peers

HOST = "smtprelay-rates-h1"
BURST = 5  # with the rate delay: (BURST - 1) * DELAY seconds
# Without it, more mails make an overlap of sessions certain, not just likely: each delivery lasts a few ms only.
WIDE_BURST = 10
DELAY = 2
# Postfix's timers have one-second resolution: a delay of DELAY seconds may pause for just over DELAY - 1.
SHORTEST_PAUSE = DELAY - 1
LOG_LINE = re.compile(r"^(\S+) listener=(\S+) peer=([^ ]+):(\d+) event=(\w+)")


@pytest.fixture(scope="module")
def host():
    fleet.start_host(HOST, "rates1.smtp-relay.test")
    yield HOST
    fleet.remove_host(HOST)


def configure(tmp_path, **limits):
    variables = fleet.campus_vars(**limits)
    rc, changed, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", variables)
    assert rc == 0, output
    rc, again, output = fleet.play(tmp_path, [HOST], "smtp.relay.configure", variables, check_mode=True)
    assert (rc, again[HOST]) == (0, []), output
    return changed[HOST]


def parse_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()


def burst(label: str, count: int = BURST) -> tuple[float, list[dict]]:
    """Submit ``count`` mails in one go on the host; return when, and their relay records in order of arrival."""
    started = time.time()
    subjects = [f"burst {label} {n} {time.time()}" for n in range(count)]
    # Queued while Postfix is stopped (postdrop leaves them in the maildrop), so that the queue manager gets the
    # whole burst at once when it starts, not one mail per sendmail run.
    sends = " && ".join(
        f"printf 'Subject: {s}\\n\\nburst\\n' | /usr/sbin/sendmail -i ops@smtp-relay.test" for s in subjects
    )
    script = f"systemctl stop postfix && {sends} && systemctl start postfix"
    fleet.podman("exec", HOST, "sh", "-c", script)
    records_dir = lab.info()["relay"]["records_dir"]
    for subject in subjects:
        records.wait_for(records_dir, lambda r, s=subject: records.headers(r)["Subject"] == s, timeout=90)
    ours = [r for r in records.messages(records_dir) if records.headers(r)["Subject"] in subjects]
    assert len(ours) == count, "each mail once"
    ours.sort(key=lambda r: parse_time(r["received_at"]))
    print(f"{label}: gaps {gaps(ours)}, sessions {delivery_spans(started, ours)}")  # shown with pytest -rP
    return started, ours


def gaps(arrivals: list[dict]) -> list[float]:
    times = [parse_time(r["received_at"]) for r in arrivals]
    return [round(b - a, 3) for a, b in itertools.pairwise(times)]


def delivery_spans(started: float, arrivals: list[dict]) -> list[tuple[float, float]]:
    """Per relay session from the host since the burst started: (connect, last message accepted), from the relay's
    log (the host sends nothing else meanwhile)."""
    # The host reaches the relay over IPv4 and IPv6 in turn (its name has both): every address the burst came from.
    peers, since = {r["peer"] for r in arrivals}, started - 1
    log = Path(lab.info()["relay"]["records_dir"]).parent / "log"
    connected, spans = {}, {}
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines()[-5000:]:
        match = LOG_LINE.match(line)
        if not match or match[3] not in peers or parse_time(match[1]) < since:
            continue
        session = (match[2], match[4])
        if match[5] == "connect":
            connected[session] = parse_time(match[1])
        elif match[5] == "queued" and session in connected:
            spans[session] = (connected[session], parse_time(match[1]))
    return sorted(spans.values())


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _end in spans] + [(end, -1) for _start, end in spans])
    most = current = 0
    for _moment, step in events:
        current += step
        most = max(most, current)
    return most


def test_without_limits_the_burst_arrives_together(tmp_path, host):
    configure(tmp_path)
    assert fleet.on_host(HOST, "postconf", "-n", "smtp_destination_rate_delay").strip() == ""
    started, arrivals = burst("unlimited", WIDE_BURST)
    assert min(gaps(arrivals)) < SHORTEST_PAUSE, f"no two mails arrived together: {gaps(arrivals)}"
    spans = delivery_spans(started, arrivals)
    assert most_at_once(spans) > 1, f"Postfix delivered the burst one session at a time: {spans}"


def test_rate_delay_spaces_every_delivery(tmp_path, host):
    configure(tmp_path, postfix_rate_delay=f"{DELAY}s")
    assert fleet.on_host(HOST, "postconf", "-h", "smtp_destination_rate_delay").strip() == f"{DELAY}s"
    started, arrivals = burst("delayed")
    spacing = gaps(arrivals)
    assert all(gap > SHORTEST_PAUSE for gap in spacing), f"mails closer than the rate delay allows: {spacing}"
    assert most_at_once(delivery_spans(started, arrivals)) == 1, "a rate delay makes the concurrency 1"


def test_concurrency_one_serializes_without_pause(tmp_path, host):
    configure(tmp_path, postfix_relay_concurrency=1)
    assert fleet.on_host(HOST, "postconf", "-n", "smtp_destination_rate_delay").strip() == ""
    assert fleet.on_host(HOST, "postconf", "-h", "smtp_destination_concurrency_limit").strip() == "1"
    started, arrivals = burst("serial", WIDE_BURST)
    assert most_at_once(delivery_spans(started, arrivals)) == 1, "deliveries overlapped with a concurrency of 1"
    assert min(gaps(arrivals)) < SHORTEST_PAUSE, f"a concurrency limit is no delay: {gaps(arrivals)}"
