# SPDX-License-Identifier: GPL-3.0-or-later
"""Import the collection as ``ansible_collections.smtp.relay`` from this work tree, in plain pytest (no ``make``).

A link to the repository is kept under the ignored .cache, and Ansible's collection loader is configured the way
its own CLI does it (``init_plugin_loader``), so that Templar also resolves ``smtp.relay.*`` filters.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# .cache/ is ignored by git. `make link` keeps its own .cache/collections (ANSIBLE_COLLECTIONS_PATH for ansible).
COLLECTIONS = ROOT / ".cache" / "pytest-collections"


def link_collection(top: Path = COLLECTIONS) -> Path:
    """``top``/ansible_collections/smtp/relay -> this repository (a relative link: the clone may move)."""
    link = top / "ansible_collections" / "smtp" / "relay"
    if os.path.realpath(link) == str(ROOT):
        return link
    link.parent.mkdir(parents=True, exist_ok=True)
    # Made under a unique name, then renamed over the link: concurrent runs see the old link or the new, never none.
    staging = link.with_name(f".relay-{os.getpid()}-{secrets.token_hex(4)}")
    staging.symlink_to(os.path.relpath(ROOT, link.parent), target_is_directory=True)
    try:
        os.replace(staging, link)
    finally:
        if staging.is_symlink():
            staging.unlink()
    if os.path.realpath(link) != str(ROOT):
        raise RuntimeError(f"{link} should lead to {ROOT}; remove it and run again")
    return link


def configure() -> None:
    """Make ``ansible_collections.smtp.relay`` and the ``smtp.relay.*`` plugins resolve to this work tree."""
    # Ansible reads its configuration once, on first use: the tests' own, not ~/.ansible.cfg or /etc/ansible.
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "tests" / "ansible.cfg"))
    link_collection(COLLECTIONS)
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))

    from ansible.plugins.loader import init_plugin_loader
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is None:
        # Public entry point (ansible's CLI calls it); our path goes before the configured collection paths.
        init_plugin_loader([str(COLLECTIONS)])
