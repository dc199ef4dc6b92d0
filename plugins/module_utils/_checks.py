# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the shape of a check result, shared by every checking module.

A check is ``{id, status, stage, message, hint, ...}``; ids are stable so that playbooks and CI
can act on them, messages are for people.
"""

from __future__ import annotations

PASS = "pass"
WARN = "warn"
FAIL = "fail"
UNKNOWN = "unknown"
SKIP = "skip"
STATUSES = (PASS, WARN, FAIL, UNKNOWN, SKIP)


def check(check_id: str, status: str, message: str, stage: str | None = None, hint: str | None = None, **extra):
    """Build one check entry; ``extra`` keys must hold no secret."""
    if status not in STATUSES:
        raise ValueError(f"unknown check status {status!r}")
    entry = {"id": check_id, "status": status, "stage": stage, "message": message, "hint": hint}
    entry.update(extra)
    return entry


def failed(checks) -> list:
    return [c for c in checks if c["status"] == FAIL]


def is_valid(checks) -> bool:
    """Valid means no check failed; warnings and unknowns are reported but do not invalidate."""
    return not failed(checks)


def summary(checks) -> str:
    counts = {s: 0 for s in STATUSES}
    for c in checks:
        counts[c["status"]] += 1
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    bad = failed(checks)
    if bad:
        text += ": " + "; ".join(f"{c['id']}: {c['message']}" for c in bad)
    return text
