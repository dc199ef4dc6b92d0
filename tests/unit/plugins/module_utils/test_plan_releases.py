# SPDX-License-Identifier: GPL-3.0-or-later
"""The plan on each Debian release the role supports: the role's per-platform table (roles/postfix/vars/main.yml),
templated by Ansible with the facts a host of that release reports, gives the plan the compatibility_level its
Postfix knows; everything else in main.cf is the same on every release."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings
from ansible_collections.smtp.relay.plugins.module_utils._plan.role import COMPATIBILITY_LEVEL

VARS = Path(__file__).resolve().parents[4] / "roles" / "postfix" / "vars" / "main.yml"

# The facts the role gathers (distribution subset) on each release, and the Postfix that release ships.
DEBIAN = {
    "bullseye": ({"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "11"}, "3.5"),
    "bookworm": ({"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "12"}, "3.7"),
    "trixie": ({"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "13"}, "3.10"),
}
# Postfix's compatibility levels and the release that introduced each (COMPATIBILITY_README).
LEVELS = {"0": (2, 0), "1": (3, 0), "2": (3, 2), "3.6": (3, 6), "3.11": (3, 11)}
CAMPUS = {
    "postfix_relay_host": "relay.example.org",
    "postfix_relay_port": 587,
    "postfix_sender_address": "noreply@dept.example.org",
    "postfix_allowed_sender_domains": ["dept.example.org"],
}


def newest_level(postfix: str) -> str:
    """The newest compatibility level a Postfix version knows: the one its defaults are written for."""
    version = tuple(int(part) for part in postfix.split("."))
    return max((level for level, since in LEVELS.items() if since <= version), key=lambda level: LEVELS[level])


def role_host(facts: dict | None) -> dict:
    """``__postfix_host`` as the role templates it for a host with these facts (None: no facts, as verify offline)."""
    variables = DataLoader().load_from_file(str(VARS), trusted_as_template=True)
    variables["inventory_hostname"] = "web1.example.org"
    if facts is not None:
        variables["ansible_facts"] = {"fqdn": "web1.example.org", "hostname": "web1", **facts}
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template("{{ __postfix_host }}"))


@pytest.mark.parametrize("release", sorted(DEBIAN))
def test_each_release_gets_the_newest_level_its_postfix_knows(release):
    facts, postfix = DEBIAN[release]
    host = role_host(facts)
    assert host["compatibility_level"] == newest_level(postfix)
    assert relay_settings(CAMPUS, host=host)["main_cf"]["compatibility_level"] == newest_level(postfix)


def test_debian_11_is_held_at_level_2_and_the_others_at_3_6():
    levels = {release: role_host(facts)["compatibility_level"] for release, (facts, _postfix) in DEBIAN.items()}
    assert levels == {"bullseye": "2", "bookworm": "3.6", "trixie": "3.6"}


def test_only_the_compatibility_level_differs_between_releases():
    plans = {release: relay_settings(CAMPUS, host=role_host(facts)) for release, (facts, _postfix) in DEBIAN.items()}
    for got in plans.values():
        got["main_cf"].pop("compatibility_level")
    assert plans["bullseye"] == plans["bookworm"] == plans["trixie"]
    assert plans["bullseye"]["packages"] == ["postfix", "libsasl2-modules", "ca-certificates"]


@pytest.mark.parametrize(
    ("facts", "level"),
    [
        (None, COMPATIBILITY_LEVEL),  # verify without the probe: no facts, the Debian family's values
        ({"os_family": "Debian", "distribution": "Debian", "distribution_major_version": "n/a"}, "3.6"),  # sid
        ({"os_family": "Debian", "distribution": "Ubuntu", "distribution_major_version": "24"}, "3.6"),
        ({"os_family": "RedHat", "distribution": "Rocky", "distribution_major_version": "9"}, "2"),  # Postfix 3.5
        ({"os_family": "Suse", "distribution": "openSUSE Leap", "distribution_major_version": "15"}, "3.6"),
        ({"os_family": "Debian"}, "3.6"),  # facts gathered without the distribution subset
    ],
)
def test_other_platforms_get_their_family_values(facts, level):
    assert role_host(facts)["compatibility_level"] == level


def test_a_host_dict_without_a_level_gets_the_default():
    host = {"fqdn": "web1.example.org", "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}
    assert relay_settings(CAMPUS, host=host)["main_cf"]["compatibility_level"] == "3.6"
    assert COMPATIBILITY_LEVEL == newest_level("3.7") == newest_level("3.10")


def test_newest_level():
    versions = ("2.11", "3.1", "3.5", "3.6", "3.10", "3.11")
    assert [newest_level(v) for v in versions] == ["0", "1", "2", "3.6", "3.6", "3.11"]
