# SPDX-License-Identifier: GPL-3.0-or-later
"""_sender.dkim: key records through CNAMEs, revoked keys, key types and RSA sizes, tag lists, selectors."""

from __future__ import annotations

import base64

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._sender import dkim

from tests.unit.plugins.module_utils.sender_fakes import rsa_key_b64, txt, world_resolver


def key(record_text, extra=None):
    records = {("s._domainkey.d.org", "TXT"): txt(record_text), **(extra or {})}
    return dkim.check_key(world_resolver(records), "s", "d.org")


def test_key_through_cname():
    found = dkim.check_key(world_resolver(), "s1", "sender-ok.org")
    assert found.status == "ok"
    assert found.cnames == ("s1.dkim.relay-lab.net",)
    assert (found.key_type, found.key_bits) == ("rsa", 2048)


@pytest.mark.parametrize(
    ("text", "status", "bits"),
    [
        (f"v=DKIM1; k=rsa; p={rsa_key_b64(512)}", "ok", 512),
        (f"v=DKIM1; p={rsa_key_b64(1024)}; t=y", "ok", 1024),
        ("v=DKIM1; k=rsa; p=", "revoked", None),
        (f"v=DKIM1; k=ed25519; p={base64.b64encode(bytes(32)).decode()}", "ok", 256),
        ("v=DKIM2; p=abc", "invalid", None),
        ("v=DKIM1; k=dsa; p=abc", "invalid", None),
        ("v=DKIM1; p=!!notbase64", "invalid", None),
    ],
)
def test_key_records(text, status, bits):
    found = key(text)
    assert found.status == status
    assert found.key_bits == bits


def test_testing_flag_and_missing_key():
    assert key(f"v=DKIM1; t=s:y; p={rsa_key_b64(2048)}").testing
    missing = dkim.check_key(world_resolver(), "nope", "sender-ok.org")
    assert missing.status == "missing"
    slow = dkim.check_key(world_resolver(timeouts=["s._domainkey.d.org"]), "s", "d.org")
    assert slow.status == "unknown"


def test_pkcs1_key_size():
    der = base64.b64decode(rsa_key_b64(2048, seed=7))
    # The BIT STRING's content after the unused-bits byte is the bare RSAPublicKey some signers publish.
    inner = der[der.index(b"\x03\x82") + 5 :]
    assert dkim.rsa_modulus_bits(inner) == 2048


def _spki_around(der: bytes) -> bytes:
    from tests.unit.plugins.module_utils.sender_fakes import _der

    algorithm = _der(0x30, bytes.fromhex("06092a864886f70d010101") + b"\x05\x00")
    return _der(0x30, algorithm + _der(0x03, b"\x00" + der))


def test_nested_key_info_is_refused_not_recursed_into():
    der = base64.b64decode(rsa_key_b64(1024))
    with pytest.raises(ValueError, match="nested"):
        dkim.rsa_modulus_bits(_spki_around(der))
    deep = der
    for _unused in range(5000):
        deep = _spki_around(deep)
    with pytest.raises(ValueError):  # was RecursionError, which nothing caught
        dkim.rsa_modulus_bits(deep)
    found = key(f"v=DKIM1; p={base64.b64encode(deep).decode()}")
    assert found.status == "invalid" and "nested" in found.problems[0]


def test_tag_list_is_shared_with_dmarc():
    parts = dkim.tag_list(" v = DKIM1 ;; K=rsa; junk ; p=MIGf MA0G ;")
    assert parts == [
        ("v = DKIM1", "v", "DKIM1"),
        ("K=rsa", "k", "rsa"),
        ("junk", None, ""),
        ("p=MIGf MA0G", "p", "MIGf MA0G"),
    ]
    # In a key record white space inside a value is folding: the base64 of p= is often split.
    assert dkim.parse_tags(" v = DKIM1 ;; K=rsa; junk ; p=MIGf MA0G ;") == {"v": "DKIM1", "k": "rsa", "p": "MIGfMA0G"}


def test_selectors_are_dns_labels():
    assert dkim.parse_selectors([" S1 ", "mail.2024", "a_b-c"]) == ["s1", "mail.2024", "a_b-c"]
    for bad in ["", "a..b", "s 1", "x" * 64, 7, "s\n1"]:
        with pytest.raises(SmtpRelayError) as err:
            dkim.parse_selectors([bad])
        assert err.value.details["field"] == "dkim_selectors"
