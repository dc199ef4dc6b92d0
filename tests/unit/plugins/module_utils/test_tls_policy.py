# SPDX-License-Identifier: GPL-3.0-or-later
"""TLS policy per relay and smtp_host_lookup: the plan's table and main.cf, the rules over the table, and relay_check
honouring both (expected name, fingerprints, level, lookup) with the fake network."""

from __future__ import annotations

import hashlib
import json

import pytest
import trustme
from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings
from ansible_collections.smtp.relay.plugins.module_utils._dns import make_resolver
from ansible_collections.smtp.relay.plugins.module_utils._optional import OptionalLibrary
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.settings import Settings
from ansible_collections.smtp.relay.plugins.module_utils._probe import stages
from ansible_collections.smtp.relay.plugins.module_utils._probe.policy import relay_tls
from ansible_collections.smtp.relay.plugins.module_utils._probe.relay_check import run
from ansible_collections.smtp.relay.plugins.module_utils._probe.stages import ProbeSpec
from ansible_collections.smtp.relay.plugins.module_utils._rules import (
    min_tls_version,
    parse_policy,
    policy_entry,
    static_checks,
)

from .dns_fakes import StaticBackend
from .postfix_fake import FakePostfix
from .smtp_fakes import FakeNetwork, records_for, server_context

CA = "/etc/ssl/certs/ca-certificates.crt"
HOST = {"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": CA, "packages": ["postfix"]}
SECRET = "st0red-n0t-sh0wn"
PIN = "AB" * 32
EXCLUDED = "!SSLv2:!SSLv3:!TLSv1:!TLSv1.1"


def plan(**variables):
    return relay_settings({"postfix_relay_host": "relay.example.org", **variables}, host=HOST)


def refused(**variables) -> str:
    with pytest.raises(AnsibleFilterError) as info:
        plan(**variables)
    return info.value.message


def table(got: dict) -> dict:
    return next(t for t in got["tables"] if t["name"] == "tls_policy")


# -- the plan ------------------------------------------------------------------------------------------------------
def test_every_relay_gets_an_entry_that_repeats_main_cf():
    got = plan(postfix_relay_backup_hosts=[{"host": "backup.example.org"}])
    cf = got["main_cf"]
    assert cf["smtp_tls_policy_maps"] == "hash:/etc/postfix/tls_policy"
    assert cf["smtp_tls_mandatory_protocols"] == cf["smtp_tls_protocols"] == "!SSLv2, !SSLv3, !TLSv1, !TLSv1.1"
    assert cf["smtp_host_lookup"] == "dns"
    assert table(got) == {
        "name": "tls_policy",
        "state": "present",
        "entries": {
            "[relay.example.org]:587": f"secure protocols={EXCLUDED}",
            "[backup.example.org]:587": f"secure protocols={EXCLUDED}",
        },
    }


def test_expected_name_is_matched_and_sent_as_sni():
    got = plan(postfix_relay_host="proxy.internal", postfix_relay_port=30002, postfix_relay_tls="implicit",
               postfix_relay_tls_name="smtp.provider.example.", postfix_relay_host_lookup="native")  # fmt: skip
    entry = table(got)["entries"]["[proxy.internal]:30002"]
    assert entry == f"secure match=smtp.provider.example servername=smtp.provider.example protocols={EXCLUDED}"
    assert got["main_cf"]["smtp_host_lookup"] == "native"
    assert got["main_cf"]["smtp_tls_security_level"] == "secure"


def test_fingerprints_pin_the_certificate():
    colons = ":".join(["cd"] * 32)
    got = plan(postfix_relay_tls_fingerprints=[PIN, colons, PIN.lower()])
    cf = got["main_cf"]
    assert (cf["smtp_tls_security_level"], cf["smtp_tls_fingerprint_digest"], cf["smtp_tls_CAfile"]) == (
        "fingerprint",
        "sha256",
        None,
    )
    pins = ":".join(["AB"] * 32) + "|" + ":".join(["CD"] * 32)
    assert table(got)["entries"]["[relay.example.org]:587"] == f"fingerprint match={pins} protocols={EXCLUDED}"


def test_opportunistic_tls_and_tls13():
    got = plan(postfix_relay_tls_opportunistic=True, postfix_relay_tls_min_version="TLSv1.3")
    assert got["main_cf"]["smtp_tls_security_level"] == "may"
    assert table(got)["entries"]["[relay.example.org]:587"] == f"may protocols={EXCLUDED}:!TLSv1.2"
    assert got["main_cf"]["smtp_tls_CAfile"] is None


def test_no_table_without_tls():
    got = plan(postfix_relay_port=25, postfix_relay_tls="none")
    assert table(got)["state"] == "absent"
    assert got["main_cf"]["smtp_tls_policy_maps"] is None
    assert got["main_cf"]["smtp_tls_mandatory_protocols"] is None


def test_postfix_main_cf_level_is_followed_by_the_table():
    got = plan(postfix_main_cf={"smtp_tls_security_level": "verify"})
    assert table(got)["entries"]["[relay.example.org]:587"].startswith("verify ")


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({"postfix_relay_tls_name": "bad name"}, "postfix_relay_tls_name: 'bad name' is not a host name"),
        ({"postfix_relay_tls_name": "nexthop"}, "postfix_relay_tls_name: 'nexthop' is not a host name"),
        ({"postfix_relay_tls_name": "a.example", "postfix_relay_tls_verify": False}, "postfix_relay_tls_name: is not"),
        ({"postfix_relay_tls_name": "a.example", "postfix_relay_tls_fingerprints": [PIN]}, "postfix_relay_tls_name"),
        ({"postfix_relay_tls_fingerprints": [PIN, "zz"]}, "postfix_relay_tls_fingerprints[1]: 'zz' is not a SHA-256"),
        ({"postfix_relay_tls_min_version": "TLSv1.1"}, "postfix_relay_tls_min_version"),
        ({"postfix_relay_host_lookup": "nis"}, "postfix_relay_host_lookup"),
        ({"postfix_relay_tls_opportunistic": True, "postfix_relay_port": 465}, "postfix_relay_tls_opportunistic"),
        ({"postfix_relay_tls_opportunistic": True, "postfix_relay_tls_name": "a.example"}, "postfix_relay_tls_name"),
        ({"postfix_relay_tls": "none", "postfix_relay_tls_fingerprints": [PIN]}, "postfix_relay_tls_fingerprints"),
        ({"postfix_relay_tls_name": "a.example", "postfix_main_cf": {"smtp_tls_security_level": "encrypt"}},
         "postfix_relay_tls_name: smtp_tls_security_level = encrypt (postfix_main_cf)"),
        ({"postfix_main_cf": {"smtp_tls_policy_maps": "hash:/etc/postfix/mine"}}, "set by the role from"),
        ({"postfix_main_cf": {"smtp_host_lookup": "native"}}, "set postfix_relay_host_lookup only"),
        ({"postfix_main_cf": {"smtp_tls_security_level": "fingerprint"}}, "tls.policy_invalid"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_naming_the_variable(variables, expected):
    assert expected in refused(**variables)


# -- the rules over the table --------------------------------------------------------------------------------------
def test_policy_entry_grammar_round_trips():
    text = policy_entry("fingerprint", [PIN, "CD" * 32], "", "!SSLv2, !SSLv3")
    assert parse_policy(text) == {
        "level": "fingerprint",
        "match": [PIN, "CD" * 32],
        "servername": "",
        "protocols": ["!SSLv2", "!SSLv3"],
        "unknown": [],
    }
    assert parse_policy("secure match=a.example:b.example bogus")["unknown"] == ["bogus"]


@pytest.mark.parametrize(
    ("protocols", "version"),
    [
        (["!SSLv2", "!SSLv3", "!TLSv1", "!TLSv1.1"], "TLSv1.2"),
        (["!sslv2", "!sslv3", "!tlsv1", "!tlsv1.1", "!tlsv1.2"], "TLSv1.3"),
        ([">=TLSv1.2"], "TLSv1.2"),
        (["!SSLv2", "!SSLv3"], None),
    ],
)
def test_oldest_protocol_of_a_protocol_list(protocols, version):
    assert min_tls_version(protocols) == version


def rule(settings: dict, policies, status=None) -> dict:
    checks = static_checks(settings, {"tls_policies": policies})
    return {c["id"]: c["status"] for c in checks if status is None or c["status"] == status}


def test_a_relay_with_an_entry_is_judged_by_its_entry():
    main = {"relayhost": "[relay.example.org]:587", "smtp_tls_security_level": "may"}
    covered = rule(main, {"[relay.example.org]:587": "secure", "other": "none"})
    assert covered.get("tls.opportunistic") is None, "main.cf's may does not apply to a relay with an entry"
    assert covered["tls.policy"] == "pass"
    assert covered["tls.verify_without_ca"] == "fail", "the entry's secure level needs a CA"
    assert rule(main, {})["tls.opportunistic"] == "warn"


def test_implicit_tls_with_an_opportunistic_entry_fails():
    main = {"relayhost": "[relay.example.org]:465", "smtp_tls_security_level": "encrypt", "smtp_tls_wrappermode": "yes"}
    assert rule(main, {"[RELAY.example.org]:465": "may"})["tls.wrappermode_level"] == "fail"


@pytest.mark.parametrize(
    ("entry", "status"),
    [("fingerprint", "fail"), ("secure bogus=1", "fail"), ("strict", "fail"), ("encrypt match=a.example", "warn")],
)
def test_bad_entries(entry, status):
    main = {"relayhost": "[relay.example.org]:587", "smtp_tls_security_level": "encrypt", "smtp_tls_CAfile": CA}
    assert rule(main, {"[relay.example.org]:587": entry})["tls.policy_invalid"] == status


def test_an_unreadable_table_is_unknown():
    main = {"relayhost": "[relay.example.org]:587", "smtp_tls_policy_maps": "hash:/etc/postfix/tls_policy"}
    assert rule(main, None)["tls.policy"] == "unknown"


# -- the probe honours the policy -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def test_relay_tls_reads_the_entry_over_main_cf():
    s = Settings({"smtp_tls_security_level": "encrypt", "smtp_tls_mandatory_protocols": "!SSLv2, !SSLv3"})
    entry = f"secure match=smtp.provider.example servername=smtp.provider.example protocols={EXCLUDED}"
    got = relay_tls(s, {"[proxy.internal]:30002": entry}, "[proxy.internal]:30002")
    assert got["level"] == "secure"
    assert got["cert_match"] == ("smtp.provider.example",)
    assert (got["servername"], got["min_version"], got["policy_names"]) == ("smtp.provider.example", "TLSv1.2", True)
    plain = relay_tls(s, {}, "[proxy.internal]:30002")
    assert (plain["level"], plain["min_version"], plain["source"]) == ("encrypt", None, "")


def tls_network(cert):
    """A relay offering STARTTLS with ``cert`` (the fake relay speaks STARTTLS only; the policy is the same)."""
    kwargs = {"extensions": ("STARTTLS", "AUTH PLAIN"), "tls_context": server_context(cert)}
    return FakeNetwork(addresses={"proxy.internal": ["192.0.2.30"]}, relay_kwargs=kwargs)


def forward_spec(**kw) -> ProbeSpec:
    base = {"host": "proxy.internal", "port": 30002, "tls": "starttls", "timeout": 2}
    return ProbeSpec(**{**base, **kw})


def checks_of(result) -> dict:
    return {c["id"]: c for c in result.checks}


def test_the_expected_name_of_the_policy_verifies_a_forward(ca, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    network = tls_network(ca.issue_cert("smtp.provider.example"))
    good = forward_spec(
        verify=True,
        ca_file=str(ca_file),
        cert_match=("smtp.provider.example",),
        policy="p",
        policy_names=True,
        servername="smtp.provider.example",
        min_version="TLSv1.2",
    )
    checks = checks_of(stages.probe(good, **network.seams()))
    assert (checks["cert.chain"]["status"], checks["cert.name"]["status"]) == ("pass", "pass")
    bad = forward_spec(verify=True, ca_file=str(ca_file), cert_match=("other.example",), policy="p", policy_names=True)
    failed = checks_of(stages.probe(bad, **network.seams()))["cert.policy_name_mismatch"]
    assert failed["status"] == "fail"
    assert "smtp.provider.example" in failed["hint"]


def test_a_may_relay_whose_certificate_does_not_verify_is_a_warning(ca, tmp_path):
    ca_file = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(ca_file))
    network = tls_network(ca.issue_cert("x.example"))
    spec = forward_spec(tls_required=False, ca_file=str(ca_file))
    checks = checks_of(stages.probe(spec, **network.seams()))
    assert checks["cert.untrusted"]["status"] == "warn"
    assert checks["cert.name_mismatch"]["status"] == "warn"


def test_pinned_fingerprints(ca):
    cert = ca.issue_cert("anything.example")
    der = __import__("ssl").PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    pin = hashlib.sha256(der).hexdigest()
    network = tls_network(cert)
    ok = checks_of(stages.probe(forward_spec(fingerprints=(pin,)), **network.seams()))
    assert ok["cert.name"]["status"] == "pass"
    wrong = checks_of(stages.probe(forward_spec(fingerprints=("00" * 32,)), **network.seams()))
    assert wrong["cert.fingerprint_mismatch"]["status"] == "fail"


def test_dns_alone_does_not_find_a_name_only_in_etc_hosts():
    network = FakeNetwork()  # DNS knows nothing
    native = make_resolver(backend=StaticBackend(records_for({"proxy.internal": ["192.0.2.30"]})))
    result = stages.probe(forward_spec(lookup=("dns",)), network.resolver, network.connect, native=native)
    checks = checks_of(result)
    assert checks["dns.host_lookup"]["status"] == "fail"
    assert "postfix_relay_host_lookup: native" in checks["dns.host_lookup"]["hint"]
    assert network.connects == [], "Postfix would not connect: neither does the probe"


@pytest.fixture
def sasl_host(tmp_path):
    (tmp_path / "sasl_passwd").write_text(f"[relay.example.test]:587 relayuser:{SECRET}\n")
    (tmp_path / "tls_policy").write_text("[relay.example.test]:587 may\n")
    (tmp_path / "main.cf").write_text(
        "relayhost = [relay.example.test]:587\n"
        "smtp_tls_security_level = encrypt\n"
        "smtp_sasl_auth_enable = yes\n"
        f"smtp_sasl_password_maps = hash:{tmp_path / 'sasl_passwd'}\n"
        f"smtp_tls_policy_maps = hash:{tmp_path / 'tls_policy'}\n"
        "smtp_sasl_security_options = noanonymous\n"
    )
    return tmp_path


def test_send_test_authenticates_with_the_stored_credentials_and_hides_them(sasl_host):
    relay = {"users": {"relayuser": SECRET}, "extensions": ("AUTH PLAIN LOGIN",)}
    network = FakeNetwork(addresses={"relay.example.test": ["192.0.2.25"]}, relay_kwargs=relay)
    hidden = []
    params = {"config_dir": str(sasl_host), "timeout": 2, "mail_from": "a@example.test", "rcpt_to": ["b@example.test"],
              "send_test": True}  # fmt: skip
    result = run(params, PostconfRunner(FakePostfix()), hide=hidden.extend, **network.seams())
    checks = {c["id"]: c["status"] for c in result["checks"]}
    assert (checks["auth.login"], checks["message.sent"]) == ("pass", "pass")
    assert SECRET in hidden
    assert SECRET not in json.dumps(result)
    # The relay's policy entry (may) decides over main.cf's encrypt: no STARTTLS offered is a warning.
    assert checks["tls.starttls_not_offered"] == "warn"
    assert checks["tls.policy"] == "pass"


def test_the_probe_looks_the_relay_up_as_postfix_will(monkeypatch):
    from ansible_collections.smtp.relay.plugins.module_utils._probe import policy

    given, explain = policy.lookup_resolvers(("native",), ["192.0.2.53"], 2)
    assert (type(given.backend).__name__, explain) == ("DnspythonBackend", None), "given nameservers win"
    native, explain = policy.lookup_resolvers(("native",), [], 2)
    assert (type(native.backend).__name__, explain) == ("SystemBackend", None)
    dns_only, explain = policy.lookup_resolvers(("dns",), [], 2)
    assert type(dns_only.backend).__name__ == "DnspythonBackend"
    assert type(explain.backend).__name__ == "SystemBackend"
    both, explain = policy.lookup_resolvers(("dns", "native"), [], 2)
    assert (type(both.backend).__name__, explain) == ("_DnsThenNative", None)
    assert policy.host_lookup(Settings({"smtp_host_lookup": "dns, native"})) == ("dns", "native")
    assert policy.host_lookup(Settings({})) == ("dns",)
    monkeypatch.setattr(policy, "DNSPYTHON", OptionalLibrary("dnspython", "python3-dnspython", "missing"))
    fallback, explain = policy.lookup_resolvers(("dns",), [], 2)
    assert (type(fallback.backend).__name__, explain) == ("SystemBackend", None), "without dnspython: as before"


def test_dns_then_native_asks_the_system_only_when_dns_has_no_address():
    from ansible_collections.smtp.relay.plugins.module_utils._probe.policy import _DnsThenNative

    dns = StaticBackend(records_for({"in.dns.example": ["192.0.2.1"]}))
    system = StaticBackend(records_for({"in.dns.example": ["192.0.2.9"], "hosts.only": ["192.0.2.2"]}))
    chain = _DnsThenNative(dns, system)
    assert chain.lookup("in.dns.example", "A", 1).records == ("192.0.2.1",)
    assert chain.lookup("hosts.only", "A", 1).records == ("192.0.2.2",)
