# SPDX-License-Identifier: GPL-3.0-or-later
"""_sender.engine.check_senders end to end over a StaticBackend world: per-domain verdicts and their stable ids."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._sender.engine import check_senders

from tests.unit.plugins.module_utils.sender_fakes import rsa_key_b64, txt, world_resolver


def report(params, resolver):
    """The result as data: fail_on [] so that checks that fail are reported, not raised."""
    return check_senders({"fail_on": [], **params}, resolver)


def by_id(result, domain, check_id):
    return [c for c in result["domains"][domain]["checks"] if c["id"] == check_id]


def status(result, domain, check_id):
    found = by_id(result, domain, check_id)
    assert found, f"no {check_id} for {domain}"
    return [c["status"] for c in found]


def test_good_sender_passes_everything():
    params = {
        "addresses": ["noreply@sender-ok.org"],
        "allowed_domains": ["sender-ok.org"],
        "relay_host": "[smtp.relay-lab.net]:587",
        "dkim_selectors": ["s1"],
    }
    result = report(params, world_resolver())
    assert result["valid"], result["msg"]
    entry = result["domains"]["sender-ok.org"]
    assert entry["addresses"] == ["noreply@sender-ok.org"]
    assert {c["status"] for c in entry["checks"]} == {"pass"}
    assert result["relay"]["ips"] == ["127.0.1.25"]
    assert by_id(result, "sender-ok.org", "dkim.record")[0]["cname_chain"] == ["s1.dkim.relay-lab.net"]
    assert by_id(result, "sender-ok.org", "dmarc.alignment")[0]["spf_aligned"] is True


def test_special_use_names_are_refused_without_any_dns_question():
    resolver = world_resolver()
    result = report({"addresses": ["a@mail.test", "b@example.com"], "domains": ["x.local"]}, resolver)
    assert not result["valid"]
    for name in ("mail.test", "example.com", "x.local"):
        assert status(result, name, "domain.special_use") == ["fail"]
        assert not by_id(result, name, "domain.exists")
    assert resolver.asked == 0
    assert result["dns_queries"] == 0


def test_placeholder_domain_warns():
    result = report({"domains": ["test.com"]}, world_resolver())
    assert status(result, "test.com", "domain.placeholder") == ["warn"]


def test_sender_outside_the_list_is_rejected_or_rewritten():
    params = {"domains": ["other.org", "sender-ok.org"], "allowed_domains": ["*.sender-ok.org"]}
    rejected = report(params, world_resolver())
    entry = by_id(rejected, "other.org", "domain.not_allowed")[0]
    assert (entry["status"], entry["relay_action"]) == ("fail", "reject")
    # The apex is not admitted by a subdomain rule.
    assert status(rejected, "sender-ok.org", "domain.not_allowed") == ["fail"]
    rewritten = report({**params, "rewrite_domain": "relay-lab.net", "relay_ips": ["127.0.1.1"]}, world_resolver())
    entry = by_id(rewritten, "other.org", "domain.not_allowed")[0]
    assert (entry["status"], entry["relay_action"], entry["rewrite_to"]) == ("warn", "rewrite", "relay-lab.net")
    assert by_id(rewritten, "other.org", "spf.relay_not_authorized") == []  # NXDOMAIN: nothing more is asked


def test_nxdomain_null_mx_and_sends_no_mail():
    result = report({"domains": ["gone.org", "null-mx.org"]}, world_resolver())
    assert status(result, "gone.org", "domain.exists") == ["fail"]
    assert status(result, "null-mx.org", "mx.null") == ["fail"]
    assert status(result, "null-mx.org", "spf.sends_no_mail") == ["fail"]


def test_no_answer_is_unknown_never_pass_or_fail():
    params = {"domains": ["slow.org"], "relay_ips": ["127.0.1.1"]}
    result = report(params, world_resolver(timeouts=["slow.org"]))
    # Unknown is not success: not valid, and a verdict of its own; the default fail_on ([fail]) lets it through.
    assert result["valid"] is False
    assert result["verdict"] == "unknown"
    assert result["domains"]["slow.org"]["verdict"] == "unknown"
    assert check_senders(params, world_resolver(timeouts=["slow.org"]))["verdict"] == "unknown"
    assert status(result, "slow.org", "domain.exists") == ["unknown"]
    assert status(result, "slow.org", "spf.record") == ["unknown"]
    assert status(result, "slow.org", "spf.relay_not_authorized") == ["unknown"]


def test_relay_not_authorized_and_misaligned_envelope():
    extra = {
        ("bad.org", "MX"): [(10, "mx.bad.org")],
        ("bad.org", "TXT"): txt("v=spf1 ip4:192.0.2.0/24 -all"),
        ("_dmarc.bad.org", "TXT"): txt("v=DMARC1; p=reject"),
    }
    result = report({"domains": ["bad.org"], "relay_ips": ["127.0.1.1"]}, world_resolver(extra))
    check = by_id(result, "bad.org", "spf.relay_not_authorized")[0]
    assert (check["status"], check["result"], check["ip"]) == ("fail", "fail", "127.0.1.1")
    assert status(result, "bad.org", "dmarc.alignment") == ["fail"]
    # The relay rewrites the envelope to its own domain: SPF passes there, but does not align with bad.org.
    relayed = report(
        {"domains": ["bad.org"], "relay_ips": ["127.0.1.1"], "envelope_domain": "relay-lab.net"},
        world_resolver({**extra, ("relay-lab.net", "TXT"): txt("v=spf1 ip4:127.0.1.0/24 -all")}),
    )
    assert status(relayed, "bad.org", "spf.relay_not_authorized") == ["pass"]
    alignment = by_id(relayed, "bad.org", "dmarc.alignment")[0]
    assert (alignment["status"], alignment["spf_aligned"], alignment["spf_pass"]) == ("fail", False, True)


def test_dmarc_inherited_from_the_organizational_domain():
    result = report({"domains": ["sub.parent.org"], "relay_ips": ["127.0.1.1"]}, world_resolver())
    record = by_id(result, "sub.parent.org", "dmarc.record")[0]
    assert (record["inherited"], record["found_at"], record["applied_policy"]) == (True, "parent.org", "reject")


@pytest.mark.parametrize(
    ("selector_record", "check_id", "expected"),
    [
        ("v=DKIM1; p=", "dkim.key", "fail"),
        (f"v=DKIM1; p={rsa_key_b64(768)}", "dkim.key", "fail"),
        (f"v=DKIM1; p={rsa_key_b64(1024)}", "dkim.key", "warn"),
        (f"v=DKIM1; t=y; p={rsa_key_b64(2048)}", "dkim.testing", "warn"),
    ],
)
def test_dkim_key_problems(selector_record, check_id, expected):
    extra = {("k._domainkey.sender-ok.org", "TXT"): txt(selector_record)}
    result = report({"domains": ["sender-ok.org"], "dkim_selectors": ["k"]}, world_resolver(extra))
    assert status(result, "sender-ok.org", check_id) == [expected]


def test_provider_include():
    extra = {
        ("ses-user.org", "TXT"): txt("v=spf1 include:amazonses.com -all"),
        ("amazonses.com", "TXT"): txt("v=spf1 -all"),
    }
    result = report({"domains": ["ses-user.org", "sender-ok.org"], "provider": "ses"}, world_resolver(extra))
    assert status(result, "ses-user.org", "spf.provider_include") == ["pass"]
    assert status(result, "sender-ok.org", "spf.provider_include") == ["fail"]


def test_invalid_addresses_and_domains_are_reported_not_raised():
    result = report({"addresses": ["no-at-sign"], "domains": ["bad_domain.org"]}, world_resolver())
    assert status(result, "no-at-sign", "address.syntax") == ["fail"]
    assert status(result, "bad_domain.org", "domain.syntax") == ["fail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "addresses"),
        ({"domains": ["a.org"], "relay_ips": ["smtp.relay-lab.net"]}, "relay_ips"),
        ({"domains": ["a.org"], "provider": "postmark"}, "provider"),
        ({"domains": ["a.org"], "dkim_selectors": ["bad selector"]}, "dkim_selectors"),
        ({"domains": ["a.org"], "rewrite_domain": "-x.org"}, "rewrite_domain"),
        ({"domains": ["a.org"], "workers": 0}, "workers"),
    ],
)
def test_bad_input_is_refused_before_any_question(params, field):
    resolver = world_resolver()
    with pytest.raises(SmtpRelayError) as err:
        report(params, resolver)
    assert err.value.details["field"] == field
    assert resolver.asked == 0


def test_many_domains_concurrently_share_one_cache():
    domains = [f"d{i}.sender-ok.org" for i in range(40)]
    resolver = world_resolver({(d, "MX"): [(10, "mx.sender-ok.org")] for d in domains})
    result = report({"domains": domains, "relay_ips": ["127.0.1.1"], "workers": 8}, resolver)
    assert set(result["domains"]) == set(domains)
    asked = resolver.backend.asked
    assert len(asked) == len(set(asked))
    assert asked.count(("_dmarc.sender-ok.org", "TXT")) == 1


# --- defects found by adversarial testing ----------------------------------------------------------------------


@pytest.mark.parametrize("pct", ["\u0661\u0660\u0660", "\uff11\uff10\uff10", "\xb9\u2070\u2070", "\xb2", "1e2", "+50"])
def test_dmarc_pct_in_other_digits_is_a_failed_check_not_a_crash(pct):
    extra = {("_dmarc.sender-ok.org", "TXT"): txt(f"v=DMARC1; p=reject; pct={pct}")}
    params = {"domains": ["sender-ok.org", "sub.parent.org"], "relay_ips": ["127.0.1.9"]}
    result = report(params, world_resolver(extra))
    record = by_id(result, "sender-ok.org", "dmarc.record")[0]
    assert record["status"] == "fail"
    assert f"pct={pct!r}" in record["message"] and "ASCII digits" in record["message"]
    # The other domain is judged as always.
    assert status(result, "sub.parent.org", "dmarc.record") == ["pass"]
    assert result["domains"]["sub.parent.org"]["verdict"] == "pass"


def test_valid_pct_is_reported_as_a_number():
    extra = {("_dmarc.sender-ok.org", "TXT"): txt("v=DMARC1; p=reject; pct=50")}
    result = report({"domains": ["sender-ok.org"], "relay_ips": ["127.0.1.9"]}, world_resolver(extra))
    assert by_id(result, "sender-ok.org", "dmarc.record")[0]["pct"] == 50


def test_an_unexpected_error_in_one_domain_stays_in_that_domain(monkeypatch):
    from ansible_collections.smtp.relay.plugins.module_utils._sender import spf as _spf

    walk = _spf.walk

    def broken(resolver, name):
        if name == "null-mx.org":
            raise RuntimeError("simulated bug")
        return walk(resolver, name)

    monkeypatch.setattr(_spf, "walk", broken)
    result = report({"domains": ["null-mx.org", "sub.parent.org"], "relay_ips": ["127.0.1.9"]}, world_resolver())
    error = by_id(result, "null-mx.org", "domain.check_error")[0]
    assert error["status"] == "fail" and "RuntimeError: simulated bug" in error["message"]
    assert result["domains"]["null-mx.org"]["valid"] is False
    assert status(result, "sub.parent.org", "dmarc.record") == ["pass"]
    assert not by_id(result, "sub.parent.org", "domain.check_error")


def _nested_spki(depth: int) -> str:
    from tests.unit.plugins.module_utils.sender_fakes import _der

    algorithm = _der(0x30, bytes.fromhex("06092a864886f70d010101") + b"\x05\x00")
    der = _der(0x30, _der(0x02, b"\x00\xff") + _der(0x02, b"\x01"))
    for _unused in range(depth):
        der = _der(0x30, algorithm + _der(0x03, b"\x00" + der))
    return base64.b64encode(der).decode()


def test_dkim_key_nested_without_end_is_a_failed_check():
    # Thousands of SubjectPublicKeyInfo wrapped in each other used to recurse until RecursionError.
    extra = {("k._domainkey.sender-ok.org", "TXT"): txt("v=DKIM1; ", f"p={_nested_spki(3000)}")}
    result = report({"domains": ["sender-ok.org"], "dkim_selectors": ["k"]}, world_resolver(extra))
    record = by_id(result, "sender-ok.org", "dkim.record")[0]
    assert record["status"] == "fail" and "nested" in record["message"]


def test_dkim_cname_loop_is_a_failed_check():
    extra = {
        ("k._domainkey.sender-ok.org", "CNAME"): ["k.loop-a.org"],
        ("k.loop-a.org", "CNAME"): ["k.loop-b.org"],
        ("k.loop-b.org", "CNAME"): ["k.loop-a.org"],
    }
    result = report({"domains": ["sender-ok.org"], "dkim_selectors": ["k"]}, world_resolver(extra))
    record = by_id(result, "sender-ok.org", "dkim.record")[0]
    assert record["status"] == "fail" and "looping" in record["message"]


def test_spf_redirect_loop_is_reported_not_followed_forever():
    extra = {
        ("loop.org", "MX"): [(10, "mx.loop.org")],
        ("loop.org", "TXT"): txt("v=spf1 redirect=_spf.loop.org"),
        ("_spf.loop.org", "TXT"): txt("v=spf1 redirect=loop.org"),
    }
    result = report({"domains": ["loop.org"], "relay_ips": ["127.0.1.9"]}, world_resolver(extra))
    assert status(result, "loop.org", "spf.includes") == ["fail"]
    assert status(result, "loop.org", "spf.relay_not_authorized") == ["fail"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("dns_port", 0),
        ("dns_port", "0"),
        ("dns_port", 65536),
        ("dns_port", "\u0665\u0663"),
        ("dns_port", True),
        ("timeout", 0),
        ("timeout", 0.0),
        ("timeout", float("nan")),
        ("timeout", float("inf")),
        ("timeout", "\u0661"),
        ("timeout", 301),
        ("deadline", float("nan")),
        ("deadline", 0),
        ("workers", "\uff11\uff16"),
        ("workers", 0),
        ("workers", 100000),
        ("nameservers", [53]),
        ("nameservers", "127.0.0.1"),
        ("fail_on", ["pass"]),
        ("fail_on", "fail"),
    ],
)
def test_bad_numbers_are_refused_by_name_never_replaced(option, value):
    # dns_port 0 and timeout 0 used to become 53 and 5.0 without a word; NaN disabled every bound.
    with pytest.raises(SmtpRelayError) as err:
        check_senders({"addresses": ["a@sender-ok.org"], option: value}, world_resolver())
    assert err.value.details["field"] == option
    assert err.value.msg.startswith(f"{option}:")


def test_options_are_checked_even_when_no_dns_is_needed():
    with pytest.raises(SmtpRelayError) as err:
        check_senders({"addresses": ["root@host.example.test"], "dns_port": 0, "fail_on": []})
    assert err.value.details["field"] == "dns_port"


def test_relay_host_errors_name_the_option():
    with pytest.raises(SmtpRelayError) as err:
        check_senders({"domains": ["sender-ok.org"], "relay_host": "[smtp.relay-lab.net:587]"}, world_resolver())
    assert err.value.details["field"] == "relay_host" and err.value.msg.startswith("relay_host:")


def test_fail_on_decides_when_the_run_fails_with_the_whole_result():
    params = {"domains": ["null-mx.org", "slow.org"], "relay_ips": ["127.0.1.1"]}
    with pytest.raises(SmtpRelayError) as err:
        check_senders(params, world_resolver(timeouts=["slow.org"]))
    details = err.value.details
    assert details["valid"] is False and details["verdict"] == "fail"
    assert set(details["domains"]) == {"null-mx.org", "slow.org"}
    assert "mx.null" in err.value.msg and "fail_on: fail" in err.value.msg
    only_unknown = {"domains": ["slow.org"], "relay_ips": ["127.0.1.1"]}
    with pytest.raises(SmtpRelayError, match="status unknown"):
        check_senders({**only_unknown, "fail_on": ["unknown"]}, world_resolver(timeouts=["slow.org"]))
    warned = {"domains": ["test.com"], "fail_on": ["warn"]}
    with pytest.raises(SmtpRelayError, match="status warn"):
        check_senders(warned, world_resolver())
    assert report(params, world_resolver(timeouts=["slow.org"]))["verdict"] == "fail"


def test_verdict_is_the_worst_status():
    assert report({"domains": ["sender-ok.org"], "relay_ips": ["127.0.1.25"]}, world_resolver())["verdict"] == "pass"
    extra = {
        ("test.com", "MX"): [(10, "mx.test.com")],
        ("test.com", "TXT"): txt("v=spf1 include:_spf.relay-lab.net -all"),
        ("_dmarc.test.com", "TXT"): txt("v=DMARC1; p=none"),
    }
    placeholder = report({"domains": ["test.com"], "relay_ips": ["127.0.1.25"]}, world_resolver(extra))
    assert placeholder["domains"]["test.com"]["verdict"] == "warn"
    assert placeholder["domains"]["test.com"]["valid"] is True


@pytest.mark.parametrize("address", ["a\n@sender-ok.org", "é\x00@sender-ok.org", "é\u2028x@sender-ok.org"])
def test_control_characters_in_the_local_part_are_a_failed_check(address):
    result = report({"addresses": [address]}, world_resolver())
    assert status(result, address, "address.syntax") == ["fail"]
