# SPDX-License-Identifier: GPL-3.0-or-later
"""The DNS fake behind the one resolver seam (``_dns.Resolver``): answers from a dict, for unit tests only."""

from __future__ import annotations

from ansible_collections.smtp.relay.plugins.module_utils._dns import (
    NODATA,
    NXDOMAIN,
    OK,
    TIMEOUT,
    Answer,
    normalize_name,
)


class StaticBackend:
    """Answers from a dict, for tests and for pinning answers: ``{(name, type): [values]}``.

    A name present under any type answers ``nodata`` for the others; an absent name is ``nxdomain``.
    ``timeouts`` holds names (any type) or ``(name, type)`` pairs that never answer. A ``CNAME`` entry is
    followed by the resolver as a real one would be.
    """

    def __init__(self, records: dict, timeouts=()):
        self.records = {(normalize_name(n), t.upper()): list(v) for (n, t), v in records.items()}
        self.names = {n for n, _unused in self.records}
        self.timeouts = {t if isinstance(t, str) else (normalize_name(t[0]), t[1].upper()) for t in timeouts}
        self.asked: list[tuple[str, str]] = []

    def lookup(self, name: str, rdtype: str, timeout: float) -> Answer:
        key = (normalize_name(name), rdtype)
        self.asked.append(key)
        if key[0] in self.timeouts or key in self.timeouts:
            return Answer(name, rdtype, TIMEOUT, error="no answer (static)")
        if key in self.records:
            return Answer(name, rdtype, OK, tuple(self.records[key]))
        cname = self.records.get((key[0], "CNAME"))
        if cname and rdtype != "CNAME":
            return Answer(name, rdtype, NODATA, cnames=(normalize_name(cname[0]),))
        return Answer(name, rdtype, NODATA if key[0] in self.names else NXDOMAIN)
