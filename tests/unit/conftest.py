# SPDX-License-Identifier: GPL-3.0-or-later
"""Make `smtp.relay.*` resolvable by Ansible's plugin loader inside plain pytest."""

from __future__ import annotations

from pathlib import Path

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder

_COLLECTIONS = Path(__file__).resolve().parents[2] / ".cache" / "collections"
_AnsibleCollectionFinder(paths=[str(_COLLECTIONS)])._install()
