# SPDX-License-Identifier: GPL-3.0-or-later
"""One NSD server with the sender_check zones for the whole module, and a server that never answers."""

from __future__ import annotations

import pytest

from tests.integration.sender_check.zones import ZONES
from tests.peers.dns import nsd_server, silent_udp_server


@pytest.fixture(scope="module")
def dns_server(tmp_path_factory):
    with nsd_server(ZONES, workdir=tmp_path_factory.mktemp("nsd")) as address:
        yield address


@pytest.fixture
def silent_server():
    with silent_udp_server("127.0.0.2") as address:
        yield address
