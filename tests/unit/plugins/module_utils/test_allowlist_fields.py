# SPDX-License-Identifier: GPL-3.0-or-later
"""The fields relay owners ask for (volume per day, sender domains), platform apps behind shared egress ranges, a
request given whole, and failed checks as warnings."""

from __future__ import annotations

import csv
import io
import json

import pytest
import yaml

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.render import render, render_fleet_markdown
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.request import allowlist_request
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from tests.unit.plugins.module_utils.allowlist_fakes import ROUTES, FakeHost, dns_ok

BASE = {"purpose": "Order mails", "team": "Shop", "contact": "shop-ops@example.org", "relay_host": "relay.example.test"}
# A platform app: its name resolves to the platform's ingress, its mail leaves from the platform's shared ranges.
APP = {"forward": {"shop.apps.example.org": ["198.51.100.80"]}, "reverse": {"203.0.113.9": ["nat.platform.example"]}}


def run(resolver=None, **options):
    return allowlist_request({**BASE, **options}, FakeHost(routes=ROUTES), resolver or dns_ok())


def by_id(result) -> dict:
    return {c["id"]: c for c in result["checks"]}


# Volume per day and sender domains


def test_volume_and_sender_domains_are_in_the_request_normalised():
    request = run(volume_per_day="1200", sender_domains=["Shop.Example.ORG.", "bücher.example", "shop.example.org"])
    assert request["request"]["volume_per_day"] == 1200
    assert request["request"]["sender_domains"] == ["shop.example.org", "xn--bcher-kva.example"]


@pytest.mark.parametrize("fmt", ["mail", "markdown", "json", "yaml", "csv"])
def test_every_rendering_shows_volume_and_sender_domains(fmt):
    rendered = run(format=fmt, volume_per_day=0, sender_domains=["shop.example.org", "example.net"])["rendered"]
    if fmt == "json":
        data = json.loads(rendered)
    elif fmt == "yaml":
        data = yaml.safe_load(rendered)
    elif fmt == "csv":
        data = next(csv.DictReader(io.StringIO(rendered)))
        assert data["sender_domains"] == "shop.example.org example.net"
        assert data["volume_per_day"] == "0"
        return
    else:
        assert "Expected volume per day" in rendered and "0" in rendered
        assert "shop.example.org, example.net" in rendered
        return
    assert data["volume_per_day"] == 0
    assert data["sender_domains"] == ["shop.example.org", "example.net"]


def test_people_facing_renderings_leave_out_what_was_not_given():
    for fmt in ("mail", "markdown"):
        rendered = run(format=fmt)["rendered"]
        assert "volume" not in rendered.lower() and "Sender domains" not in rendered and "Shared" not in rendered


def test_the_fleet_table_has_the_columns_some_host_fills():
    one = run(volume_per_day=0)["request"]
    other = {**run()["request"], "fqdn": "h2.example.test", "ipv4": [], "ipv6": []}
    table = render_fleet_markdown([one, other])
    assert "Expected volume per day" in table and "Sender domains" not in table


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"volume_per_day": -1}, "volume_per_day"),
        ({"volume_per_day": "many"}, "volume_per_day"),
        ({"volume_per_day": 10**10}, "volume_per_day"),
        ({"sender_domains": ["not a domain"]}, "sender_domains"),
        ({"sender_domains": ["user@example.org"]}, "sender_domains"),
        ({"sender_domains": ["localhost"]}, "sender_domains"),
        ({"sender_domains": "example.org"}, "sender_domains"),
        ({"sender_domains": ["example.org\nBcc: x"]}, "sender_domains"),
        ({"shared_egress": True}, "shared_egress"),
        ({"shared_egress": "yes", "egress": ["203.0.113.9"]}, "shared_egress"),
    ],
)
def test_bad_values_are_refused_naming_the_option(options, field):
    with pytest.raises(SmtpRelayError) as refused:
        run(**options)
    assert refused.value.details["field"] == field
    assert field in refused.value.msg


# Shared egress ranges


def test_without_shared_egress_a_platform_app_fails_its_forward_check():
    with pytest.raises(SmtpRelayError, match=r"fqdn\.forward_mismatch"):
        run(dns_ok(**APP), fqdn="shop.apps.example.org", egress=["203.0.113.9", "198.51.100.0/26"])


def test_shared_egress_ranges_are_explained_skips_not_failures():
    result = run(
        dns_ok(**APP), fqdn="shop.apps.example.org", egress=["203.0.113.9", "198.51.100.0/26"], shared_egress=True
    )
    statuses = {c["id"]: c["status"] for c in result["checks"] if c["stage"] == "dns"}
    assert statuses == {"fqdn.shared_egress": "skip", "rdns.shared_egress": "skip"}
    skipped = [c for c in result["checks"] if c["id"].endswith("shared_egress")]
    assert [c["address"] for c in skipped] == ["203.0.113.9", "203.0.113.9", "198.51.100.0/26"]
    assert all("shared egress" in c["message"] for c in skipped)
    assert result["valid"] is True
    assert result["request"]["shared_egress"] is True
    assert result["request"]["ipv4"] == ["203.0.113.9", "198.51.100.0/26"]
    assert "Shared egress: yes" in " ".join(result["rendered"].split())


def test_shared_egress_still_needs_a_name_that_resolves():
    with pytest.raises(SmtpRelayError, match=r"fqdn\.unresolved"):
        run(dns_ok(**APP), fqdn="ghost.apps.example.org", egress=["203.0.113.9"], shared_egress=True)


def test_shared_egress_keeps_the_address_rules():
    with pytest.raises(SmtpRelayError) as refused:
        run(dns_ok(**APP), fqdn="shop.apps.example.org", egress=["198.51.0.0/16"], shared_egress=True)
    assert refused.value.details["field"] == "egress"


def test_a_range_the_name_does_resolve_into_still_passes():
    resolver = dns_ok(forward={"shop.apps.example.org": ["203.0.113.9"]})
    result = run(resolver, fqdn="shop.apps.example.org", egress=["203.0.113.0/28"], shared_egress=True)
    assert by_id(result)["fqdn.forward_confirmed"]["status"] == "pass"


# A request given whole


def test_a_given_request_is_checked_as_input_again():
    built = run(volume_per_day=3)["request"]
    again = allowlist_request({"request": built, "format": "json"}, FakeHost())
    assert json.loads(again["rendered"]) == built
    for edit, field in (({"ipv4": ["0.0.0.0/0"]}, "ipv4"), ({"purpose": "a\nb"}, "purpose"), ({"volume_per_day": -2},
                        "volume_per_day")):  # fmt: skip
        with pytest.raises(SmtpRelayError) as refused:
            allowlist_request({"request": {**built, **edit}}, FakeHost())
        assert refused.value.details["field"] in ("request", field)
        assert field in refused.value.msg


def test_a_given_request_and_its_fields_are_not_given_twice():
    built = run()["request"]
    with pytest.raises(SmtpRelayError) as refused:
        allowlist_request({"request": built, "purpose": "Other"}, FakeHost())
    assert refused.value.details["field"] == "request" and "purpose" in refused.value.msg


# Failed checks reach the play's output


def test_failed_checks_become_warnings_when_the_request_is_rendered_anyway():
    result = run(ipv4=["10.89.0.99"], report_only=True)
    assert result["warnings"] == [
        "allowlist check fqdn.forward_mismatch failed: h1.example.test resolves to 10.89.0.11, fd00::11, not to "
        "10.89.0.99"
    ]


def test_no_warnings_when_every_check_passes():
    assert run()["warnings"] == []


def test_render_of_a_request_from_before_the_new_fields():
    old = {k: v for k, v in run()["request"].items() if k not in ("volume_per_day", "sender_domains", "shared_egress")}
    assert "Expected volume" not in render(old, "mail")
