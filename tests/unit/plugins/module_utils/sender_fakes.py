# SPDX-License-Identifier: GPL-3.0-or-later
"""Test data for sender_check: DKIM keys of chosen sizes and a StaticBackend world of sender domains."""

from __future__ import annotations

import base64
import random

from ansible_collections.smtp.relay.plugins.module_utils._dns import Resolver
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    length = (
        bytes([n])
        if n < 128
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + body


def rsa_key_b64(bits: int, seed: int = 1) -> str:
    """A SubjectPublicKeyInfo with an RSA modulus of exactly ``bits`` bits (not a real key: only its size matters)."""
    rng = random.Random(seed)
    modulus = rng.getrandbits(bits) | (1 << (bits - 1)) | 1
    integer = _der(0x02, b"\x00" + modulus.to_bytes((bits + 7) // 8, "big"))
    rsa_public_key = _der(0x30, integer + _der(0x02, (65537).to_bytes(3, "big")))
    algorithm = _der(0x30, bytes.fromhex("06092a864886f70d010101") + b"\x05\x00")
    return base64.b64encode(_der(0x30, algorithm + _der(0x03, b"\x00" + rsa_public_key))).decode()


def txt(*strings: str):
    return [tuple(s.encode() for s in strings)]


KEY_2048 = rsa_key_b64(2048)

WORLD = {
    ("sender-ok.org", "MX"): [(10, "mx.sender-ok.org")],
    ("sender-ok.org", "TXT"): txt("v=spf1 include:_spf.relay-lab.net -all"),
    ("_dmarc.sender-ok.org", "TXT"): txt("v=DMARC1; p=reject; rua=mailto:dmarc@sender-ok.org"),
    ("s1._domainkey.sender-ok.org", "CNAME"): ["s1.dkim.relay-lab.net"],
    ("s1.dkim.relay-lab.net", "TXT"): txt("v=DKIM1; k=rsa; ", f"p={KEY_2048}"),
    ("_spf.relay-lab.net", "TXT"): txt("v=spf1 ip4:127.0.1.0/24 -all"),
    ("smtp.relay-lab.net", "A"): ["127.0.1.25"],
    ("null-mx.org", "MX"): [(0, "")],
    ("null-mx.org", "TXT"): txt("v=spf1 -all"),
    ("sub.parent.org", "MX"): [(10, "mx.parent.org")],
    ("sub.parent.org", "TXT"): txt("v=spf1 include:_spf.relay-lab.net -all"),
    ("_dmarc.parent.org", "TXT"): txt("v=DMARC1; p=quarantine; sp=reject; adkim=s"),
}


def world_resolver(extra=None, timeouts=(), **kwargs) -> Resolver:
    return Resolver(StaticBackend({**WORLD, **(extra or {})}, timeouts), **{"timeout": 1, **kwargs})
