# SPDX-License-Identifier: GPL-3.0-or-later
"""sender_check against a real authoritative DNS server (NSD on loopback) serving one zone per case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._sender.engine import check_senders

from tests.integration.sender_check.zones import CHAIN, RELAY_IP

pytestmark = pytest.mark.peers
ROOT = Path(__file__).resolve().parents[3]


def run(dns_server, **params):
    host, port = dns_server
    # fail_on []: these cases look at the failed checks in the result instead of an exception.
    return check_senders({"nameservers": [host], "dns_port": port, "timeout": 2.0, "fail_on": [], **params})


def checks(result, domain, check_id):
    found = [c for c in result["domains"][domain]["checks"] if c["id"] == check_id]
    assert found, f"no {check_id} for {domain}: {result['domains'][domain]}"
    return found


def statuses(result, domain, check_id):
    return [c["status"] for c in checks(result, domain, check_id)]


def test_good_sender_through_relay_host_with_cnamed_dkim(dns_server):
    result = run(
        dns_server,
        addresses=["noreply@sender-ok.org"],
        allowed_domains=["sender-ok.org"],
        relay_host="[smtp.relay-lab.net]:587",
        dkim_selectors=["s1", "s2"],
    )
    assert result["valid"], result["msg"]
    assert result["relay"]["ips"] == [RELAY_IP]
    entry = result["domains"]["sender-ok.org"]
    assert {c["status"] for c in entry["checks"]} == {"pass"}
    chains = [c["cname_chain"] for c in checks(result, "sender-ok.org", "dkim.record")]
    assert chains == [["s1.dkim.relay-lab.net"], ["s2.dkim.relay-lab.net", "s2b.dkim.relay-lab.net"]]
    assert [c["key_bits"] for c in checks(result, "sender-ok.org", "dkim.key")] == [2048, 2048]
    assert checks(result, "sender-ok.org", "dmarc.alignment")[0]["spf_pass"] is True


def test_include_chain_over_the_limit(dns_server):
    result = run(dns_server, domains=["too-many.org"], relay_ips=[RELAY_IP])
    lookups = checks(result, "too-many.org", "spf.lookups")[0]
    assert (lookups["status"], lookups["count"]) == ("fail", CHAIN)
    # Receivers stop at the limit as well: pyspf's evaluation over the real server says permerror.
    relay = checks(result, "too-many.org", "spf.relay_not_authorized")[0]
    assert (relay["status"], relay["result"]) == ("fail", "permerror")


def test_void_lookups(dns_server):
    result = run(dns_server, domains=["void-lookups.org"], relay_ips=[RELAY_IP])
    void = checks(result, "void-lookups.org", "spf.void_lookups")[0]
    assert (void["status"], void["count"]) == ("fail", 3)
    assert void["names"] == ["nx1.void-lookups.org", "nx2.void-lookups.org", "nx3.void-lookups.org"]


def test_two_spf_records(dns_server):
    result = run(dns_server, domains=["two-spf.org"], relay_ips=[RELAY_IP])
    assert statuses(result, "two-spf.org", "spf.record") == ["fail"]
    assert checks(result, "two-spf.org", "spf.relay_not_authorized")[0]["result"] == "permerror"


def test_revoked_short_and_testing_keys(dns_server):
    result = run(dns_server, domains=["keys.org"], dkim_selectors=["revoked", "short", "mid", "testing", "absent"])
    keys = {c["selector"]: c for c in checks(result, "keys.org", "dkim.key")}
    assert keys["revoked"]["status"] == "fail"
    assert (keys["short"]["status"], keys["short"]["key_bits"]) == ("fail", 768)
    assert (keys["mid"]["status"], keys["mid"]["key_bits"]) == ("warn", 1024)
    assert keys["testing"]["status"] == "pass"
    testing = {c["selector"]: c["status"] for c in checks(result, "keys.org", "dkim.testing")}
    assert testing["testing"] == "warn"
    records = {c["selector"]: c["status"] for c in checks(result, "keys.org", "dkim.record")}
    assert records["absent"] == "fail"


def test_dmarc_at_the_organizational_domain(dns_server):
    result = run(dns_server, domains=["mail.parent-dmarc.org"], relay_ips=[RELAY_IP])
    record = checks(result, "mail.parent-dmarc.org", "dmarc.record")[0]
    assert (record["found_at"], record["inherited"], record["applied_policy"]) == ("parent-dmarc.org", True, "reject")
    assert record["rua"] == ["mailto:dmarc@parent-dmarc.org"]
    assert statuses(result, "mail.parent-dmarc.org", "dmarc.alignment") == ["pass"]


def test_null_mx_sends_no_mail_nxdomain_and_no_data(dns_server):
    result = run(dns_server, domains=["null-mx.org", "missing.sender-ok.org", "www.sender-ok.org"])
    assert statuses(result, "null-mx.org", "mx.null") == ["fail"]
    assert statuses(result, "null-mx.org", "spf.sends_no_mail") == ["fail"]
    assert statuses(result, "missing.sender-ok.org", "domain.exists") == ["fail"]
    assert statuses(result, "www.sender-ok.org", "domain.exists") == ["pass"]
    assert statuses(result, "www.sender-ok.org", "mx.present") == ["warn"]


def test_misaligned_after_relay_rewriting(dns_server):
    result = run(dns_server, domains=["misaligned.org"], relay_ips=[RELAY_IP], envelope_domain="bounce.relay-lab.net")
    assert statuses(result, "misaligned.org", "spf.relay_not_authorized") == ["pass"]
    alignment = checks(result, "misaligned.org", "dmarc.alignment")[0]
    assert (alignment["status"], alignment["spf_aligned"]) == ("fail", False)


def test_refused_zone_is_unknown_not_fail(dns_server):
    # NSD answers REFUSED for names outside its zones: no answer, so unknown.
    result = run(dns_server, domains=["not-served.net"], relay_ips=[RELAY_IP])
    assert not result["valid"] and result["verdict"] == "unknown"  # unknown is not success
    assert statuses(result, "not-served.net", "domain.exists") == ["unknown"]


def test_server_that_never_answers_is_unknown_within_the_deadline(silent_server):
    host, port = silent_server
    started = time.monotonic()
    result = check_senders(
        {
            "domains": [f"d{i}.sender-ok.org" for i in range(6)],
            "relay_ips": [RELAY_IP],
            "dkim_selectors": ["s1"],
            "nameservers": [host],
            "dns_port": port,
            "timeout": 0.3,
            "deadline": 1.0,
            "workers": 2,
        }
    )
    elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert not result["valid"] and result["verdict"] == "unknown"  # unknown is not success, nor a failed check
    for entry in result["domains"].values():
        dns_statuses = {c["status"] for c in entry["checks"] if c["stage"] != "name" and c["stage"] != "policy"}
        assert dns_statuses == {"unknown"}


def test_special_use_refused_even_when_served(dns_server):
    result = run(dns_server, addresses=["root@relay.example.test", "x@example.org"])
    assert not result["valid"]
    assert result["dns_queries"] == 0


def test_module_runs_through_ansible(dns_server):
    host, port = dns_server
    args = {
        "domains": ["sender-ok.org", "null-mx.org"],
        "nameservers": [host],
        "port": port,
        "relay_ips": [RELAY_IP],
        "fail_on": [],  # report the failed checks without failing the task
    }
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".cache" / "collections"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "json",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible"), "localhost", "-c", "local", "-m", "smtp.relay.sender_check",
         "-a", json.dumps(args)],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert result["changed"] is False
    assert result["valid"] is False
    assert result["domains"]["sender-ok.org"]["valid"] is True
    null_mx = {c["id"]: c["status"] for c in result["domains"]["null-mx.org"]["checks"]}
    assert null_mx["mx.null"] == "fail"
