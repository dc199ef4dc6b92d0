# SPDX-License-Identifier: GPL-3.0-or-later
"""Read what the relay test peer received: one JSON record per accepted message in its records_dir."""

from __future__ import annotations

import email.message
import email.parser
import email.policy
import json
import os
import time
from collections.abc import Callable
from pathlib import Path


def _record_files(records_dir: str | os.PathLike) -> list[Path]:
    # The relay writes ".<random>.tmp" and renames it: only *.json files are complete records.
    return [p for p in Path(records_dir).glob("*.json") if not p.name.startswith(".")]


def messages(records_dir: str | os.PathLike) -> list[dict]:
    """All records, oldest first."""
    records = []
    for path in _record_files(records_dir):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            continue  # cleared while we were reading
    return sorted(records, key=lambda r: (r["received_at"], r["id"]))


def _summary(record: dict) -> str:
    return (
        f"{record['id']} via {record['listener']} from {record['mail_from']!r} to {record['rcpt_tos']} "
        f"(auth_user={record['auth_user']}, tls={record['tls_version'] or 'no'})"
    )


def wait_for(
    records_dir: str | os.PathLike,
    predicate: Callable[[dict], bool],
    timeout: float = 30,
    interval: float = 0.2,
) -> dict:
    """Return the first record that satisfies predicate; fail listing what did arrive after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        received = messages(records_dir)
        for record in received:
            if predicate(record):
                return record
        if time.monotonic() >= deadline:
            arrived = "\n  ".join(_summary(r) for r in received) or "nothing"
            raise AssertionError(f"no matching message in {records_dir} after {timeout}s; arrived:\n  {arrived}")
        time.sleep(interval)


def clear(records_dir: str | os.PathLike) -> None:
    """Forget every record (the directory itself stays)."""
    for path in _record_files(records_dir):
        path.unlink(missing_ok=True)


def headers(record: dict) -> email.message.Message:
    """The message's headers, parsed (the body is left out)."""
    return email.parser.Parser(policy=email.policy.default).parsestr(record["data"], headersonly=True)


def main(argv: list[str] | None = None) -> int:
    """`python -m tests.peers.records wait --subject S`: print the lab relay's record of that mail as JSON."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tests.peers.records")
    parser.add_argument("command", choices=["wait"])
    parser.add_argument("--subject", required=True)
    parser.add_argument("--timeout", type=float, default=60)
    parser.add_argument("--records-dir", help="default: the lab relay's")
    args = parser.parse_args(argv)
    records_dir = args.records_dir
    if records_dir is None:
        from tests.peers.lab import info

        records_dir = info()["relay"]["records_dir"]
    try:
        record = wait_for(records_dir, lambda r: headers(r)["Subject"] == args.subject, timeout=args.timeout)
    except AssertionError as e:
        print(e, file=sys.stderr)
        return 1
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
