# SPDX-License-Identifier: GPL-3.0-or-later
"""Allowlist requests: gathering with fakes behind the host and DNS seams, checks, input rules, renderers."""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import pathlib

import pytest
import yaml

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._allowlist import model
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.render import (
    render,
    render_csv,
    render_fleet_markdown,
)
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.request import allowlist_request, write_if_changed
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._optional import OptionalLibrary
from tests.unit.plugins.module_utils.allowlist_fakes import NOW, RELAY, ROUTES, FakeHost, dns_ok, fake_dns
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend


def params(**overrides):
    base = {
        "purpose": "Order mails",
        "team": "Shop",
        "contact": "shop-ops@example.org",
        "relay_host": "relay.example.test",
    }
    base.update(overrides)
    return base


def run(host=None, resolver=None, **overrides):
    host = host or FakeHost(routes=ROUTES)
    return allowlist_request(params(**overrides), host, resolver or dns_ok())


def ids(checks, status=None):
    return [c["id"] for c in checks if status is None or c["status"] == status]


# --- gathering ----------------------------------------------------------------------------------


def test_defaults_come_from_the_host_and_the_route_towards_the_relay():
    host = FakeHost(routes=ROUTES)
    result = run(host)
    request = result["request"]
    assert request["fqdn"] == "h1.example.test"
    assert request["ipv4"] == ["10.89.0.11"]
    assert request["ipv6"] == ["fd00::11"]
    assert request["relay"] == "relay.example.test"
    assert ("10.89.100.2", 25, None) in host.calls and ("fd00::2", 25, None) in host.calls
    assert result["valid"] is True
    assert ids(result["checks"], "fail") == []
    assert ids(result["checks"]).count("fqdn.forward_confirmed") == 2
    assert ids(result["checks"]).count("rdns.match") == 2
    detected = [c for c in result["checks"] if c["id"] == "egress.detected"]
    assert {c["address"] for c in detected} == {"10.89.0.11", "fd00::11"}


def test_relay_from_postfix_relayhost_with_its_port_and_bind_addresses():
    postfix = {"relayhost": "[relay.example.test]:587", "smtp_bind_address": "10.89.0.12", "inet_protocols": "all"}
    host = FakeHost(postfix=postfix, routes=ROUTES, local=("10.89.0.12", "fd00::11"))
    resolver = dns_ok(
        forward={"h1.example.test": ["10.89.0.12", "fd00::11"]}, reverse={"10.89.0.12": ["h1.example.test"]}
    )
    result = run(host, resolver, relay_host=None)
    assert result["request"]["relay"] == "[relay.example.test]:587"
    assert result["request"]["ipv4"] == ["10.89.0.12"]
    assert ("10.89.100.2", 587, "10.89.0.12") in host.calls
    assert ("fd00::2", 587, None) in host.calls
    assert "bound by smtp_bind_address" in next(c["message"] for c in result["checks"] if c["address"] == "10.89.0.12")


def test_inet_protocols_ipv4_means_no_ipv6_egress():
    host = FakeHost(postfix={"inet_protocols": "ipv4"}, routes=ROUTES)
    result = run(host)
    assert result["request"]["ipv6"] == []
    assert not any(call[0] == "fd00::2" for call in host.calls)
    assert "egress.protocol_disabled" in ids(result["checks"], "skip")


def test_bind_address_the_host_does_not_have_fails():
    host = FakeHost(postfix={"smtp_bind_address6": "fd00::99"}, routes=ROUTES)
    with pytest.raises(SmtpRelayError) as e:
        run(host)
    assert "egress.bind_unavailable" in ids(e.value.details["checks"], "fail")
    assert "smtp_bind_address6" in e.value.msg


def test_relay_without_ipv6_gives_no_ipv6_egress_and_a_skip():
    resolver = dns_ok(forward={"relay.example.test": ["10.89.100.2"]})
    result = run(resolver=resolver)
    assert result["request"]["ipv6"] == []
    assert "egress.no_relay_address" in ids(result["checks"], "skip")


def test_no_route_is_a_skip_not_an_address():
    host = FakeHost(routes={"10.89.100.2": "10.89.0.11"})
    result = run(host, dns_ok(forward={"h1.example.test": ["10.89.0.11"]}))
    assert result["request"]["ipv6"] == []
    assert "egress.no_route" in ids(result["checks"], "skip")


def test_unknown_relay_uses_default_route_and_warns():
    host = FakeHost(routes={"192.0.2.1": "10.89.0.11", "2001:db8::1": "fd00::11"})
    result = run(host, relay_host=None)
    assert result["request"]["ipv4"] == ["10.89.0.11"]
    assert result["request"]["relay"] is None
    assert "relay.unknown" in ids(result["checks"], "warn")
    # Not known to be private: non-public addresses are warned about, not failed.
    assert "address.not_global" in ids(result["checks"], "warn")


def test_mx_lookup_for_unbracketed_relayhost_with_port():
    host = FakeHost(routes=ROUTES)
    resolver = dns_ok(mx={"example.test": ["relay.example.test"]})
    result = run(host, resolver, relay_host="example.test:587")
    assert ("10.89.100.2", 587, None) in host.calls
    assert result["valid"]


def test_mx_hosts_in_preference_order_and_null_mx_means_the_name_itself():
    host = FakeHost(routes={"10.89.100.2": "10.89.0.11", "10.89.100.3": "10.89.0.11"})
    forward = {"mx2.example.test": ["10.89.100.3"], "mx1.example.test": ["10.89.100.2"]}
    records = {("example.test", "MX"): [(20, "MX2.example.test."), (10, "mx1.example.test")]}
    records.update({(name, "A"): addresses for name, addresses in forward.items()})
    records[("h1.example.test", "A")] = ["10.89.0.11"]
    resolver = _dns.make_resolver(backend=StaticBackend(records))
    run(host, resolver, relay_host="example.test:587", ipv6=["fd00::11"], report_only=True)
    assert host.calls == [("10.89.100.2", 587, None), ("10.89.100.3", 587, None)]
    null = dns_ok(mx={"example.test": ["."]}, forward={"example.test": ["10.89.100.2"]})
    host = FakeHost(routes=ROUTES)
    run(host, null, relay_host="example.test:587", ipv6=["fd00::11"])
    assert host.calls == [("10.89.100.2", 587, None)]


def test_unanswered_mx_is_unknown_and_no_relay_address():
    host = FakeHost(routes=ROUTES)
    result = run(host, dns_ok(broken={"example.test"}), relay_host="example.test:587", report_only=True)
    unknown = next(c for c in result["checks"] if c["id"] == "relay.lookup_failed")
    assert unknown["status"] == "unknown"
    assert unknown["message"] == "cannot resolve the relay: example.test MX: no answer (static)"
    assert host.calls == []
    assert "address.none" in ids(result["checks"], "fail")


def test_without_dnspython_the_relays_own_addresses_stand_in_for_its_mx(monkeypatch):
    # The host's resolver reads MX records through dnspython only: without it, the name's A/AAAA are used.
    monkeypatch.setattr(_dns, "DNSPYTHON", OptionalLibrary.missing("dnspython", "python3-dnspython"))
    records = {("example.test", "MX"): [(10, "elsewhere.example.test")], ("example.test", "A"): ["10.89.100.2"]}
    backend = StaticBackend({**records, ("h1.example.test", "A"): ["10.89.0.11"]})
    host = FakeHost(routes=ROUTES)
    resolver = _dns.make_resolver(backend=backend)
    result = run(host, resolver, relay_host="example.test:587", ipv6=["fd00::11"], report_only=True)
    assert host.calls == [("10.89.100.2", 587, None)]
    assert ("example.test", "MX") not in backend.asked
    assert "relay.lookup_failed" not in ids(result["checks"])


def test_bare_relay_ip_is_accepted():
    host = FakeHost(routes=ROUTES)
    run(host, relay_host="fd00::2")
    assert host.calls == [("fd00::2", 25, None)]


def test_explicit_addresses_override_detection():
    host = FakeHost(routes=ROUTES)
    resolver = dns_ok(
        forward={"h1.example.test": ["10.89.0.50", "fd00::11"]}, reverse={"10.89.0.50": ["h1.example.test"]}
    )
    result = run(host, resolver, ipv4=["10.89.0.50"])
    assert result["request"]["ipv4"] == ["10.89.0.50"]
    assert not any(call[0] == "10.89.100.2" for call in host.calls)
    assert result["request"]["ipv6"] == ["fd00::11"]


def test_nat_egress_list_split_by_family_with_ranges():
    relay = {"relay.example.test": ["198.51.100.25"]}
    forward = {**relay, "h1.example.test": ["93.184.215.14", "2a00:1450:4001::25"]}
    resolver = fake_dns(forward, {"93.184.215.14": ["h1.example.test"]})
    host = FakeHost()
    result = run(host, resolver, egress=["93.184.215.14", "2a00:1450:4001::/48"])
    assert result["request"]["ipv4"] == ["93.184.215.14"]
    assert result["request"]["ipv6"] == ["2a00:1450:4001::/48"]
    assert host.calls == []  # both families given: nothing detected
    assert ids(result["checks"]).count("fqdn.forward_confirmed") == 2  # the range holds h1's IPv6 address
    assert "rdns.missing" not in ids(result["checks"])  # no PTR check for a range
    outside = run(host, resolver, egress=["93.184.216.0/24"], report_only=True)
    assert "fqdn.forward_mismatch" in ids(outside["checks"], "fail")


def test_egress_alone_replaces_detection_of_both_families():
    resolver = fake_dns({**RELAY, "h1.example.test": ["93.184.215.14"]}, {"93.184.215.14": ["h1.example.test"]})
    host = FakeHost(routes=ROUTES)
    result = run(host, resolver, egress=["93.184.215.14"])
    assert (result["request"]["ipv4"], result["request"]["ipv6"]) == (["93.184.215.14"], [])
    assert host.calls == []
    assert result["valid"]


def test_detected_private_address_towards_public_relay_fails_as_nat():
    resolver = dns_ok(forward={"relay.example.test": ["93.184.215.25"]})
    host = FakeHost(routes={"93.184.215.25": "10.89.0.11"})
    with pytest.raises(SmtpRelayError) as e:
        run(host, resolver)
    failed = [c for c in e.value.details["checks"] if c["status"] == "fail"]
    assert [c["id"] for c in failed] == ["address.not_global"]
    assert "egress" in failed[0]["hint"]
    assert e.value.details["request"]["ipv4"] == ["10.89.0.11"]


def test_relay_public_can_be_forced():
    result = run(relay_public=True, report_only=True)
    assert ids(result["checks"], "fail").count("address.not_global") == 2
    assert not result["valid"]


@pytest.mark.parametrize("address", ["127.0.0.1", "169.254.1.1", "0.0.0.0", "::1", "fe80::1", "224.0.0.1"])
def test_unusable_addresses_fail(address):
    # Refused even with report_only: such a request is never rendered (see test_world_granting_requests_...).
    field = "ipv6" if ":" in address else "ipv4"
    with pytest.raises(SmtpRelayError) as e:
        run(report_only=True, **{field: [address]})
    bad = [c for c in e.value.details["checks"] if c["id"] == "address.unusable"]
    assert len(bad) == 1 and bad[0]["status"] == "fail" and bad[0]["field"] == field


def test_forward_mismatch_fails_and_refuses_unless_report_only():
    resolver = dns_ok(forward={"h1.example.test": ["10.89.0.99", "fd00::11"]})
    with pytest.raises(SmtpRelayError) as e:
        run(resolver=resolver)
    assert "fqdn.forward_mismatch" in e.value.msg
    assert "report_only" in e.value.msg
    result = run(resolver=resolver, report_only=True)
    assert result["valid"] is False
    mismatch = next(c for c in result["checks"] if c["id"] == "fqdn.forward_mismatch")
    assert mismatch["field"] == "ipv4" and "10.89.0.99" in mismatch["message"]


def test_unresolved_fqdn_fails():
    result = run(resolver=dns_ok(forward={"h1.example.test": []}), report_only=True)
    assert "fqdn.unresolved" in ids(result["checks"], "fail")


def test_reverse_mismatch_and_missing_are_warnings():
    resolver = dns_ok(reverse={"10.89.0.11": ["other.example.test"], "fd00::11": []})
    result = run(resolver=resolver)
    assert result["valid"] is True
    assert set(ids(result["checks"], "warn")) == {"rdns.mismatch", "rdns.missing"}


def test_dns_timeouts_are_unknown_not_failures():
    resolver = dns_ok(broken={"h1.example.test", "10.89.0.11"})
    result = run(resolver=resolver)
    # Unknown is not success (valid is false, the verdict says unknown), but the default fail_on does not fail it.
    assert result["valid"] is False
    assert result["verdict"] == "unknown"
    assert set(ids(result["checks"], "unknown")) == {"fqdn.lookup_failed", "rdns.lookup_failed"}


def test_one_family_unanswered_is_unknown_with_the_question_named():
    records = {("h1.example.test", "A"): ["10.89.0.11"], **{(n, "A"): ["10.89.100.2"] for n in RELAY}}
    records[("11.0.89.10.in-addr.arpa", "PTR")] = ["H1.Example.Test."]
    backend = StaticBackend(records, timeouts=[("h1.example.test", "AAAA")])
    result = run(resolver=_dns.make_resolver(backend=backend), ipv4=["10.89.0.11"], ipv6=["fd00::11"])
    unknown = [c for c in result["checks"] if c["status"] == "unknown"]
    assert [(c["id"], c["message"]) for c in unknown] == [
        ("fqdn.lookup_failed", "cannot resolve h1.example.test: h1.example.test AAAA: no answer (static)")
    ]
    assert not any(i.startswith("fqdn.forward") for i in ids(result["checks"]))
    assert ids(result["checks"], "pass").count("rdns.match") == 1  # PTR names are compared normalised
    assert ids(result["checks"], "warn") == ["rdns.missing"]


def test_reverse_timeout_names_the_address():
    result = run(resolver=dns_ok(broken={"fd00::11"}))
    unknown = next(c for c in result["checks"] if c["id"] == "rdns.lookup_failed")
    assert unknown["address"] == "fd00::11"
    assert unknown["message"].startswith("cannot look up the name of fd00::11: 1.1.0.0.0.0.0.0")
    assert unknown["message"].endswith(".ip6.arpa PTR: no answer (static)")


def test_unqualified_host_name_is_a_failed_check():
    result = run(FakeHost(fqdn="vm", routes=ROUTES), report_only=True)
    assert result["request"]["fqdn"] == "vm"
    assert "fqdn.not_qualified" in ids(result["checks"], "fail")
    assert not any(i.startswith("fqdn.forward") for i in ids(result["checks"]))


def test_prefer_ipv6_warns_without_ipv6():
    result = run(FakeHost(routes={"10.89.100.2": "10.89.0.11"}), prefer_ipv6=True)
    assert "ipv6.missing" in ids(result["checks"], "warn")
    assert "ipv6.missing" not in ids(run(prefer_ipv6=True)["checks"])


def test_no_address_at_all_fails():
    result = run(FakeHost(routes={}), report_only=True)
    assert "address.none" in ids(result["checks"], "fail")


def test_evidence_is_read_and_checked():
    host = FakeHost(routes=ROUTES)
    result = run(host, evidence=True)
    assert result["request"]["automatic_updates"] == "enabled"
    assert result["request"]["package_lists_updated"] == "2025-03-08"
    host.updates, host.lists = "disabled", NOW - datetime.timedelta(days=30)
    result = run(host, evidence=True, max_package_list_age=7)
    assert set(ids(result["checks"], "warn")) == {"updates.automatic", "updates.package_lists_age"}
    host.updates, host.lists = "unknown", None
    result = run(host, evidence=True)
    assert set(ids(result["checks"], "unknown")) == {"updates.automatic", "updates.package_lists_age"}
    assert result["request"]["package_lists_updated"] is None


def test_without_evidence_nothing_is_read():
    host = FakeHost(routes=ROUTES)
    host.automatic_updates = None  # would raise if called
    result = run(host)
    assert result["request"]["automatic_updates"] is None
    assert not any(i.startswith("updates.") for i in ids(result["checks"]))


# --- input rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fqdn": "host_1.example.org"}, "fqdn"),
        ({"fqdn": "localhost"}, "fqdn"),
        ({"fqdn": "192.0.2.1"}, "fqdn"),
        ({"fqdn": "-bad.example.org"}, "fqdn"),
        ({"ipv4": ["10.0.0.256"]}, "ipv4"),
        ({"ipv4": ["fd00::1"]}, "ipv4"),
        ({"ipv4": ["10.0.0.1/8"]}, "ipv4"),
        ({"ipv6": ["10.0.0.1"]}, "ipv6"),
        ({"egress": ["nat.example.org"]}, "egress"),
        ({"team": None}, "team"),
        ({"team": "   "}, "team"),
        ({"contact": None}, "contact"),
        ({"purpose": ""}, "purpose"),
        ({"purpose": "two\nlines"}, "purpose"),
        ({"contact": "ops"}, "contact"),
        ({"contact": "ops@localhost"}, "contact"),
        ({"contact": "#"}, "contact"),
        ({"contact": "ops team@example.org"}, "contact"),
        ({"format": "html"}, "format"),
        ({"relay_host": "[relay.example.org:587]"}, "relay_host"),
        ({"nameservers": ["ns.example.org"]}, "nameservers"),
        ({"subject": "a\r\nBcc: x@example.org"}, "subject"),
        ({"team": "x" * 201}, "team"),
    ],
)
def test_bad_input_is_refused_naming_the_field(overrides, field):
    host = FakeHost(routes=ROUTES)
    with pytest.raises(SmtpRelayError) as e:
        run(host, **overrides)
    assert e.value.details["field"] == field
    assert e.value.msg.startswith(f"{field} ") or e.value.msg.startswith(f"{field}:")
    assert host.calls == []  # refused before anything was looked up


@pytest.mark.parametrize(
    "contact",
    ["ops@example.org", "first.last+relay@mail.example.org", "#mail-ops", "slack:#mail-ops", "matrix:#ops:example.org"],
)
def test_contacts_accepted(contact):
    assert run(contact=contact)["request"]["contact"] == contact


def test_fqdn_is_normalised():
    resolver = dns_ok()
    assert run(resolver=resolver, fqdn="H1.Example.TEST.")["request"]["fqdn"] == "h1.example.test"


def test_address_forms_are_normalised():
    addresses = model.validate_addresses({"ipv4": ["10.1.2.3/32"], "ipv6": ["FD00:0:0::11"], "egress": ["10.1.2.3"]})
    assert [str(a) for a in addresses[4]] == ["10.1.2.3"]
    assert [str(a) for a in addresses[6]] == ["fd00::11"]


# --- renderers ----------------------------------------------------------------------------------

REQUEST = {
    "fqdn": "h1.example.test",
    "purpose": "Order mails | invoices",
    "ipv4": ["10.89.0.11"],
    "ipv6": ["fd00::11"],
    "shared_egress": None,
    "team": "Shop",
    "contact": "shop_ops@example.org",
    "volume_per_day": None,
    "sender_domains": [],
    "relay": "[relay.example.test]:587",
    "monitoring": None,
    "automatic_updates": None,
    "package_lists_updated": None,
}


def test_mail_rendering():
    assert render(REQUEST, "mail") == (
        "Subject: Email sending: allowlist server\n"
        "\n"
        "Hello,\n"
        "\n"
        "please allow the following server to send mail through the relay [relay.example.test]:587.\n"
        "\n"
        "FQDN:         h1.example.test\n"
        "Purpose:      Order mails | invoices\n"
        "IPv4 address: 10.89.0.11\n"
        "IPv6 address: fd00::11\n"
        "Owning team:  Shop\n"
        "Contact:      shop_ops@example.org\n"
        "Relay:        [relay.example.test]:587\n"
        "\n"
        "Questions about this server go to shop_ops@example.org.\n"
        "\n"
        "Thank you,\n"
        "Shop\n"
    )
    assert render({**REQUEST, "ipv6": []}, "mail", "Allowlist h1").startswith("Subject: Allowlist h1\n\n")
    assert "IPv6 address: none\n" in render({**REQUEST, "ipv6": []}, "mail")


def test_markdown_rendering_escapes_table_characters():
    text = render(REQUEST, "markdown")
    assert text.startswith("# Allowlist request: h1.example.test\n\n| Field | Value |\n|---|---|\n")
    assert "| Purpose | Order mails \\| invoices |\n" in text
    assert "| Contact | shop\\_ops@example.org |\n" in text
    assert "Monitoring" not in text


def test_json_and_yaml_round_trip_in_field_order():
    for fmt, load in (("json", json.loads), ("yaml", yaml.safe_load)):
        text = render(REQUEST, fmt)
        assert load(text) == REQUEST
        assert text.endswith("\n")
    yaml_text = render({**REQUEST, "ipv6": [], "team": 'Shop "EU": #1 ünd'}, "yaml")
    assert yaml_text.splitlines()[:2] == ["---", 'fqdn: "h1.example.test"']
    assert "ipv6: []\n" in yaml_text
    assert yaml.safe_load(yaml_text)["team"] == 'Shop "EU": #1 ünd'
    assert list(json.loads(render(REQUEST, "json"))) == list(model.FIELD_NAMES)


def test_csv_row_with_header():
    text = render({**REQUEST, "ipv4": ["10.89.0.11", "10.89.0.12"]}, "csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == list(model.FIELD_NAMES)
    assert rows[1][:4] == ["h1.example.test", "Order mails | invoices", "10.89.0.11 10.89.0.12", "fd00::11"]
    assert "\r" not in text


def test_renderings_are_byte_stable():
    for fmt in model.FORMATS:
        assert render(dict(reversed(REQUEST.items())), fmt) == render(REQUEST, fmt)


def test_fleet_renderings_sorted_by_fqdn_one_row_per_host():
    other = {**REQUEST, "fqdn": "a.example.test", "monitoring": "Zabbix"}
    text = render_csv([REQUEST, other])
    assert [r[0] for r in csv.reader(io.StringIO(text))] == ["fqdn", "a.example.test", "h1.example.test"]
    md = render_fleet_markdown([REQUEST, other], "Fleet")
    lines = md.splitlines()
    assert lines[0] == "# Fleet"
    assert lines[2] == "| FQDN | Purpose | IPv4 address | IPv6 address | Owning team | Contact | Relay | Monitoring |"
    assert lines[4].startswith("| a.example.test |") and lines[5].startswith("| h1.example.test |")
    assert lines[5].endswith("|  |")  # h1 has no monitoring value
    with pytest.raises(SmtpRelayError, match=r"same FQDN h1\.example\.test"):
        render_csv([REQUEST, dict(REQUEST)])
    with pytest.raises(SmtpRelayError, match="at least fqdn"):
        render_csv([{"team": "x"}])


# --- output file --------------------------------------------------------------------------------


def test_write_only_when_changed_with_check_mode_and_diff(tmp_path):
    dest = str(tmp_path / "request.txt")
    changed, diff = write_if_changed(dest, "one\n", check_mode=True)
    assert changed and diff["before"] == "" and diff["after"] == "one\n"
    assert not os.path.exists(dest)
    assert write_if_changed(dest, "one\n")[0] is True
    assert oct(os.stat(dest).st_mode & 0o777) == "0o644"
    os.chmod(dest, 0o600)
    assert write_if_changed(dest, "one\n") == (False, {})
    changed, diff = write_if_changed(dest, "two\n")
    assert changed and diff["before"] == "one\n" and diff["before_header"] == dest
    assert pathlib.Path(dest).read_text() == "two\n"
    assert oct(os.stat(dest).st_mode & 0o777) == "0o600"
    assert sorted(os.listdir(tmp_path)) == ["request.txt"]


def test_write_refuses_missing_directory_and_directories(tmp_path):
    with pytest.raises(SmtpRelayError, match="does not exist") as e:
        write_if_changed(str(tmp_path / "nope" / "x.txt"), "x")
    assert e.value.details["field"] == "dest"
    with pytest.raises(SmtpRelayError, match="directory"):
        write_if_changed(str(tmp_path), "x")


def test_module_function_writes_dest_and_second_run_is_unchanged(tmp_path):
    dest = str(tmp_path / "h1.md")
    first = run(format="markdown", dest=dest)
    assert first["changed"] and first["dest"] == dest
    assert pathlib.Path(dest).read_text() == first["rendered"]
    assert run(format="markdown", dest=dest)["changed"] is False
    check = allowlist_request(params(format="json", dest=dest), FakeHost(routes=ROUTES), dns_ok(), True, True)
    assert check["changed"] and check["diff"]["after"].startswith("{")
    assert pathlib.Path(dest).read_text() == first["rendered"]


# --- defects found by adversarial testing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "check_id"),
    [
        ("ipv4", "0.0.0.0/0", "address.too_broad"),
        ("ipv4", "10.0.0.0/8", "address.too_broad"),
        ("ipv4", "93.184.216.0/23", "address.too_broad"),
        ("ipv6", "::/0", "address.too_broad"),
        ("ipv6", "2a00:1450::/32", "address.too_broad"),
        ("ipv6", "2a00:1450:4000::/47", "address.too_broad"),
        ("egress", "0.0.0.0/0", "address.too_broad"),
        ("egress", "::/0", "address.too_broad"),
        ("ipv4", "0.0.0.0/24", "address.unusable"),
        ("ipv4", "127.0.0.0/24", "address.unusable"),
        ("ipv4", "169.254.7.0/24", "address.unusable"),
        ("ipv4", "224.0.0.0/24", "address.unusable"),
        ("ipv6", "::", "address.unusable"),
        ("ipv6", "ff02::1", "address.unusable"),
        ("ipv6", "fe80::/64", "address.unusable"),
        ("ipv6", "::ffff:127.0.0.1", "address.unusable"),
        ("ipv6", "::ffff:0.0.0.0", "address.unusable"),
        ("ipv6", "::ffff:169.254.1.1", "address.unusable"),
        ("ipv6", "::ffff:224.0.0.1", "address.unusable"),
        ("ipv6", "::ffff:93.184.215.14", "address.unusable"),
        ("ipv6", "::ffff:0:0/96", "address.too_broad"),
        ("ipv6", "::ffff:10.0.0.0/104", "address.too_broad"),
        ("ipv6", "::ffff:127.0.0.0/120", "address.unusable"),
        ("egress", "::ffff:127.0.0.1", "address.unusable"),
        ("ipv6", "::fffe:0:0/95", "address.too_broad"),
    ],
)
def test_world_granting_requests_are_refused_whatever_report_only_and_fail_on_say(tmp_path, field, value, check_id):
    dest = tmp_path / "request.csv"
    for overrides in ({}, {"report_only": True}, {"fail_on": []}):
        host = FakeHost(routes=ROUTES)
        with pytest.raises(SmtpRelayError) as e:
            run(host, **{field: [value]}, dest=str(dest), format="csv", **overrides)
        assert e.value.details["field"] == field
        assert e.value.msg.startswith(f"{field} ")
        refused = e.value.details["checks"]
        assert [(c["id"], c["status"], c["field"]) for c in refused] == [(check_id, "fail", field)]
        assert host.calls == []  # refused before anything was looked up
        assert not dest.exists()


def test_networks_at_the_documented_limits_are_accepted():
    forward = {**RELAY, "h1.example.test": ["93.184.216.7", "2a00:1450:4001::25"]}
    result = run(FakeHost(), fake_dns(forward), ipv4=["93.184.216.0/24"], ipv6=["2a00:1450:4001::/48"])
    assert result["request"]["ipv4"] == ["93.184.216.0/24"]
    assert result["request"]["ipv6"] == ["2a00:1450:4001::/48"]
    assert model.MIN_PREFIX == {4: 24, 6: 48}


@pytest.mark.parametrize("source", ["127.0.0.1", "169.254.3.3"])
def test_detected_unusable_address_is_refused_even_with_report_only(tmp_path, source):
    dest = tmp_path / "request.txt"
    host = FakeHost(routes={"10.89.100.2": source})
    for overrides in ({"report_only": True}, {"fail_on": []}):
        with pytest.raises(SmtpRelayError, match="refused") as e:
            run(host, dns_ok(forward={"relay.example.test": ["10.89.100.2"]}), dest=str(dest), **overrides)
        assert "address.unusable" in ids(e.value.details["checks"], "fail")
        assert e.value.details["valid"] is False
        assert not dest.exists()


@pytest.mark.parametrize("fmt", ["csv"])
@pytest.mark.parametrize(
    "team", ['=HYPERLINK("http://x.example")', "+1+1", "-2+3", "@SUM(A1)", "-", "=cmd|' /C calc'!A0"]
)
def test_csv_cells_never_start_a_formula(fmt, team):
    text = run(team=team, format=fmt)["rendered"]
    row = list(csv.reader(io.StringIO(text)))[1]
    assert row[model.FIELD_NAMES.index("team")] == "'" + team


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "\t=1"])
def test_every_csv_cell_goes_through_the_shared_neutraliser(value):
    # Values of the fleet file come from hostvars: any field may hold anything.
    request = {**REQUEST, "purpose": value, "team": value, "contact": value, "relay": value, "monitoring": value}
    rows = list(csv.reader(io.StringIO(render_csv([request]), newline="")))
    for name in ("purpose", "team", "contact", "relay", "monitoring"):
        assert rows[1][model.FIELD_NAMES.index(name)] == "'" + value
    assert rows[1][0] == "h1.example.test"  # harmless values are left alone


@pytest.mark.parametrize("brk", ["\n", "\r", "\x1b", "\x85", "\u2028", "\u2029"])
def test_fleet_markdown_shows_a_line_break_as_an_escape_in_its_cell(brk):
    md = render_fleet_markdown([{**REQUEST, "team": f"Ops{brk}| forged | row |"}], f"Fleet{brk}# more")
    lines = md.split("\n")
    assert len(lines) == 6 and lines[0] == f"# Fleet{repr(brk)[1:-1]}# more"
    assert f"| Ops{repr(brk)[1:-1]}\\| forged \\| row \\| |" in lines[4]


def test_fleet_renderings_refuse_world_granting_addresses():
    for field, value in (("ipv4", ["0.0.0.0/0"]), ("ipv6", ["::/0"]), ("ipv6", ["::ffff:127.0.0.1"]), ("ipv4", "x")):
        with pytest.raises(SmtpRelayError) as e:
            render_csv([{**REQUEST, field: value}])
        assert e.value.details["field"] == field and "h1.example.test" in e.value.msg
        with pytest.raises(SmtpRelayError):
            render_fleet_markdown([{**REQUEST, field: value}])


def test_latin1_dest_is_replaced_not_decoded(tmp_path):
    dest = tmp_path / "request.txt"
    dest.write_bytes(b"Caf\xe9 \xff\xfe old request\n")
    changed, diff = write_if_changed(str(dest), "new\n", check_mode=True)
    assert changed and "Caf\ufffd" in diff["before"] and diff["after"] == "new\n"
    assert dest.read_bytes().startswith(b"Caf\xe9")
    assert write_if_changed(str(dest), "new\n")[0] is True
    assert dest.read_bytes() == b"new\n"
    assert write_if_changed(str(dest), "new\n") == (False, {})
    first = run(dest=str(dest), team="Café")
    assert first["changed"] and dest.read_bytes() == first["rendered"].encode()
    assert run(dest=str(dest), team="Café")["changed"] is False


def test_dest_that_cannot_be_used_is_refused_by_name(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for dest in (str(fifo), str(tmp_path / "a\x00b"), str(tmp_path / ("x" * 300)), ""):
        with pytest.raises(SmtpRelayError) as e:
            write_if_changed(dest, "x\n")
        assert e.value.details["field"] == "dest"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"dns_port": 0}, "dns_port"),
        ({"dns_port": "\u0665\u0663"}, "dns_port"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"max_package_list_age": -1}, "max_package_list_age"),
        ({"max_package_list_age": "\u0667"}, "max_package_list_age"),
        ({"format": ""}, "format"),
        ({"subject": ""}, "subject"),
        ({"report_only": "false"}, "report_only"),
        ({"evidence": "yes"}, "evidence"),
        ({"fail_on": ["pass"]}, "fail_on"),
        ({"nameservers": [53]}, "nameservers"),
        ({"fqdn": "h1\n.example.test"}, "fqdn"),
        ({"fqdn": "h1.example.test\u2028x"}, "fqdn"),
        ({"ipv4": "10.0.0.1"}, "ipv4"),
        ({"dest": 5}, "dest"),
    ],
)
def test_invalid_values_are_refused_never_replaced(overrides, field):
    # dns_port 0, timeout 0, max_package_list_age 0, format "" and subject "" used to become their defaults.
    host = FakeHost(routes=ROUTES)
    with pytest.raises(SmtpRelayError) as e:
        run(host, **overrides)
    assert e.value.details["field"] == field
    assert host.calls == []


def test_zero_days_is_zero_not_the_default():
    result = run(evidence=True, max_package_list_age=0)
    age = next(c for c in result["checks"] if c["id"] == "updates.package_lists_age")
    assert age["status"] == "warn" and "limit 0" in age["message"]


def test_fail_on_unknown_fails_and_report_only_overrides_it(tmp_path):
    dest = tmp_path / "request.txt"
    resolver = dns_ok(broken={"h1.example.test"})
    with pytest.raises(SmtpRelayError) as e:
        run(resolver=resolver, fail_on=["unknown"], dest=str(dest))
    assert "fqdn.lookup_failed" in e.value.msg and "status unknown" in e.value.msg
    assert e.value.details["valid"] is False and e.value.details["verdict"] == "unknown"
    assert e.value.details["request"]["fqdn"] == "h1.example.test"
    assert not dest.exists()
    result = run(resolver=resolver, fail_on=["unknown"], report_only=True, dest=str(dest))
    assert result["verdict"] == "unknown" and dest.exists()
    warned = dns_ok(reverse={"10.89.0.11": []})
    assert run(resolver=warned)["verdict"] == "warn"
    with pytest.raises(SmtpRelayError, match="status warn"):
        run(resolver=warned, fail_on=["warn"])
    assert run(resolver=dns_ok(forward={"h1.example.test": ["10.89.0.99"]}), fail_on=[])["verdict"] == "fail"
