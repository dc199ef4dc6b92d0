# SPDX-License-Identifier: GPL-3.0-or-later
"""_sender.check_senders end to end over a StaticBackend world: per-domain verdicts and their stable ids."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._sender import check_senders

from tests.unit.plugins.module_utils.sender_fakes import rsa_key_b64, txt, world_resolver


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
    result = check_senders(params, world_resolver())
    assert result["valid"], result["msg"]
    entry = result["domains"]["sender-ok.org"]
    assert entry["addresses"] == ["noreply@sender-ok.org"]
    assert {c["status"] for c in entry["checks"]} == {"pass"}
    assert result["relay"]["ips"] == ["127.0.1.25"]
    assert by_id(result, "sender-ok.org", "dkim.record")[0]["cname_chain"] == ["s1.dkim.relay-lab.net"]
    assert by_id(result, "sender-ok.org", "dmarc.alignment")[0]["spf_aligned"] is True


def test_special_use_names_are_refused_without_any_dns_question():
    resolver = world_resolver()
    result = check_senders({"addresses": ["a@mail.test", "b@example.com"], "domains": ["x.local"]}, resolver)
    assert not result["valid"]
    for name in ("mail.test", "example.com", "x.local"):
        assert status(result, name, "domain.special_use") == ["fail"]
        assert not by_id(result, name, "domain.exists")
    assert resolver.asked == 0
    assert result["dns_queries"] == 0


def test_placeholder_domain_warns():
    result = check_senders({"domains": ["test.com"]}, world_resolver())
    assert status(result, "test.com", "domain.placeholder") == ["warn"]


def test_sender_outside_the_list_is_rejected_or_rewritten():
    params = {"domains": ["other.org", "sender-ok.org"], "allowed_domains": ["*.sender-ok.org"]}
    rejected = check_senders(params, world_resolver())
    entry = by_id(rejected, "other.org", "domain.not_allowed")[0]
    assert (entry["status"], entry["relay_action"]) == ("fail", "reject")
    # The apex is not admitted by a subdomain rule.
    assert status(rejected, "sender-ok.org", "domain.not_allowed") == ["fail"]
    rewritten = check_senders(
        {**params, "rewrite_domain": "relay-lab.net", "relay_ips": ["127.0.1.1"]}, world_resolver()
    )
    entry = by_id(rewritten, "other.org", "domain.not_allowed")[0]
    assert (entry["status"], entry["relay_action"], entry["rewrite_to"]) == ("warn", "rewrite", "relay-lab.net")
    assert by_id(rewritten, "other.org", "spf.relay_not_authorized") == []  # NXDOMAIN: nothing more is asked


def test_nxdomain_null_mx_and_sends_no_mail():
    result = check_senders({"domains": ["gone.org", "null-mx.org"]}, world_resolver())
    assert status(result, "gone.org", "domain.exists") == ["fail"]
    assert status(result, "null-mx.org", "mx.null") == ["fail"]
    assert status(result, "null-mx.org", "spf.sends_no_mail") == ["fail"]


def test_no_answer_is_unknown_never_pass_or_fail():
    result = check_senders({"domains": ["slow.org"], "relay_ips": ["127.0.1.1"]}, world_resolver(timeouts=["slow.org"]))
    assert result["valid"]
    assert status(result, "slow.org", "domain.exists") == ["unknown"]
    assert status(result, "slow.org", "spf.record") == ["unknown"]
    assert status(result, "slow.org", "spf.relay_not_authorized") == ["unknown"]


def test_relay_not_authorized_and_misaligned_envelope():
    extra = {
        ("bad.org", "MX"): [(10, "mx.bad.org")],
        ("bad.org", "TXT"): txt("v=spf1 ip4:192.0.2.0/24 -all"),
        ("_dmarc.bad.org", "TXT"): txt("v=DMARC1; p=reject"),
    }
    result = check_senders({"domains": ["bad.org"], "relay_ips": ["127.0.1.1"]}, world_resolver(extra))
    check = by_id(result, "bad.org", "spf.relay_not_authorized")[0]
    assert (check["status"], check["result"], check["ip"]) == ("fail", "fail", "127.0.1.1")
    assert status(result, "bad.org", "dmarc.alignment") == ["fail"]
    # The relay rewrites the envelope to its own domain: SPF passes there, but does not align with bad.org.
    relayed = check_senders(
        {"domains": ["bad.org"], "relay_ips": ["127.0.1.1"], "envelope_domain": "relay-lab.net"},
        world_resolver({**extra, ("relay-lab.net", "TXT"): txt("v=spf1 ip4:127.0.1.0/24 -all")}),
    )
    assert status(relayed, "bad.org", "spf.relay_not_authorized") == ["pass"]
    alignment = by_id(relayed, "bad.org", "dmarc.alignment")[0]
    assert (alignment["status"], alignment["spf_aligned"], alignment["spf_pass"]) == ("fail", False, True)


def test_dmarc_inherited_from_the_organizational_domain():
    result = check_senders({"domains": ["sub.parent.org"], "relay_ips": ["127.0.1.1"]}, world_resolver())
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
    result = check_senders({"domains": ["sender-ok.org"], "dkim_selectors": ["k"]}, world_resolver(extra))
    assert status(result, "sender-ok.org", check_id) == [expected]


def test_provider_include():
    extra = {
        ("ses-user.org", "TXT"): txt("v=spf1 include:amazonses.com -all"),
        ("amazonses.com", "TXT"): txt("v=spf1 -all"),
    }
    result = check_senders({"domains": ["ses-user.org", "sender-ok.org"], "provider": "ses"}, world_resolver(extra))
    assert status(result, "ses-user.org", "spf.provider_include") == ["pass"]
    assert status(result, "sender-ok.org", "spf.provider_include") == ["fail"]


def test_invalid_addresses_and_domains_are_reported_not_raised():
    result = check_senders({"addresses": ["no-at-sign"], "domains": ["bad_domain.org"]}, world_resolver())
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
        check_senders(params, resolver)
    assert err.value.details["field"] == field
    assert resolver.asked == 0


def test_many_domains_concurrently_share_one_cache():
    domains = [f"d{i}.sender-ok.org" for i in range(40)]
    resolver = world_resolver({(d, "MX"): [(10, "mx.sender-ok.org")] for d in domains})
    result = check_senders({"domains": domains, "relay_ips": ["127.0.1.1"], "workers": 8}, resolver)
    assert set(result["domains"]) == set(domains)
    asked = resolver.backend.asked
    assert len(asked) == len(set(asked))
    assert asked.count(("_dmarc.sender-ok.org", "TXT")) == 1
