# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the module_utils tests."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from tests.unit.plugins.module_utils.postfix_fake import FakePostfix


@pytest.fixture
def fake():
    """A fake postconf/postmap over files in the test's directories."""
    return FakePostfix()


@pytest.fixture
def runner(fake):
    return PostconfRunner(fake)


@pytest.fixture
def uninstalled(fake):
    """A host where Postfix is still to be installed: no postconf binary to be found."""
    return PostconfRunner(fake, which=lambda name: None)
