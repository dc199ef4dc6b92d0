# SPDX-License-Identifier: GPL-3.0-or-later
"""Fakes behind the allowlist seams (host facts, DNS), shared by the module_utils and module tests."""

from __future__ import annotations

import datetime

from ansible_collections.smtp.relay.plugins.module_utils._allowlist import request as al

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


class FakeResolver:
    def __init__(self, forward=None, reverse=None, mx=None, broken=()):
        self.f = forward or {}
        self.r = reverse or {}
        self.m = mx or {}
        self.broken = set(broken)

    def forward(self, name):
        if name in self.broken:
            raise al.LookupFailed(f"{name}: timed out")
        return list(self.f.get(name, []))

    def reverse(self, address):
        if address in self.broken:
            raise al.LookupFailed(f"{address}: timed out")
        return list(self.r.get(address, []))

    def mx(self, name):
        return self.m.get(name)


RELAY = {"relay.example.test": ["10.89.100.2", "fd00::2"]}
ROUTES = {"10.89.100.2": "10.89.0.11", "fd00::2": "fd00::11"}


def dns_ok(**extra):
    forward = {**RELAY, "h1.example.test": ["10.89.0.11", "fd00::11"], **extra.pop("forward", {})}
    reverse = {"10.89.0.11": ["h1.example.test"], "fd00::11": ["h1.example.test"], **extra.pop("reverse", {})}
    return FakeResolver(forward, reverse, **extra)
