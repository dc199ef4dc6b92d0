# SPDX-License-Identifier: GPL-3.0-or-later
"""Fakes behind the allowlist seams (host facts; DNS through the one resolver seam), shared by the module_utils and
module tests."""

from __future__ import annotations

import datetime

from ansible_collections.smtp.relay.plugins.module_utils._dns import make_resolver, reverse_name
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import ip_address
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend

NOW = datetime.datetime(2025, 3, 10, 12, 0, tzinfo=datetime.UTC)


class FakeHost:
    """The HostInfo seam: routes are a dict destination -> source (bind overrides, like the kernel does)."""

    def __init__(self, fqdn="h1.example.test", postfix=None, routes=None, local=("10.89.0.11", "fd00::11")):
        self._fqdn = fqdn
        self._postfix = postfix
        self.routes = routes or {}
        self.local = set(local)
        self.calls = []
        self.updates = "enabled"
        self.lists = NOW - datetime.timedelta(days=2)

    def fqdn(self):
        return self._fqdn

    def postfix_settings(self):
        return self._postfix

    def source_address(self, destination, port=25, bind=None):
        self.calls.append((destination, port, bind))
        if bind:
            if bind not in self.local:
                raise OSError(99, "Cannot assign requested address")
            return bind
        return self.routes.get(destination)

    def automatic_updates(self):
        return self.updates

    def package_lists_updated(self):
        return self.lists

    def now(self):
        return NOW


def fake_dns(forward=None, reverse=None, mx=None, broken=()):
    """A ``_dns.Resolver`` over ``StaticBackend``: forward name -> [ip], reverse ip -> [name], mx name -> [exchange]
    (preferences 10, 20 ... in order); ``broken`` names or addresses never answer (a timeout: unknown).

    An empty list is no record: the name does not exist.
    """
    records = {}
    for name, addresses in (forward or {}).items():
        for address in addresses:
            records.setdefault((name, "AAAA" if ":" in address else "A"), []).append(address)
    for address, names in (reverse or {}).items():
        if names:
            records[(reverse_name(address), "PTR")] = list(names)
    for name, exchanges in (mx or {}).items():
        records[(name, "MX")] = [(10 * (i + 1), exchange) for i, exchange in enumerate(exchanges)]
    timeouts = {reverse_name(b) if ip_address(b) is not None else b for b in broken}
    return make_resolver(backend=StaticBackend(records, timeouts=timeouts))


RELAY = {"relay.example.test": ["10.89.100.2", "fd00::2"]}
ROUTES = {"10.89.100.2": "10.89.0.11", "fd00::2": "fd00::11"}


def dns_ok(**extra):
    """DNS that confirms h1.example.test both ways and resolves the relay; ``extra`` replaces entries."""
    forward = {**RELAY, "h1.example.test": ["10.89.0.11", "fd00::11"], **extra.pop("forward", {})}
    reverse = {"10.89.0.11": ["h1.example.test"], "fd00::11": ["h1.example.test"], **extra.pop("reverse", {})}
    return fake_dns(forward, reverse, **extra)
