# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: DKIM key records (RFC 6376 3.6.1): lookup through CNAMEs, tags, key type and size."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._dns import Resolver

MIN_RSA_BITS = 1024  # receivers refuse shorter keys (RFC 8301)
GOOD_RSA_BITS = 2048
KEY_TYPES = ("rsa", "ed25519")


@dataclass
class DkimKey:
    selector: str
    name: str
    status: str  # ok | missing | invalid | revoked | unknown
    cnames: tuple = ()
    record: str | None = None
    key_type: str | None = None
    key_bits: int | None = None
    testing: bool = False
    problems: list[str] = field(default_factory=list)


def parse_tags(text: str) -> dict:
    tags = {}
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            tags[key.strip().lower()] = "".join(value.split())
    return tags


def _der_read(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise ValueError("truncated DER")
    return tag, pos, pos + length


def rsa_modulus_bits(der: bytes) -> int:
    """Bit length of the modulus of a SubjectPublicKeyInfo, or of a bare PKCS#1 RSAPublicKey (both are seen).

    A SubjectPublicKeyInfo holds an RSAPublicKey, never another SubjectPublicKeyInfo: the key is opened at most
    once, so a record nesting them (thousands deep fit in one TXT record) is refused, not recursed into.
    """
    for wrapped in (True, False):
        tag, start, _unused = _der_read(der, 0)
        if tag != 0x30:
            raise ValueError("not a DER SEQUENCE")
        tag, inner, inner_end = _der_read(der, start)
        if tag != 0x30:
            break
        if not wrapped:
            raise ValueError("a SubjectPublicKeyInfo nested in another one")
        # SubjectPublicKeyInfo: skip AlgorithmIdentifier, open the BIT STRING
        tag, bits, bits_end = _der_read(der, inner_end)
        if tag != 0x03:
            raise ValueError("no BIT STRING after the algorithm")
        der = der[bits + 1 : bits_end]
    if tag != 0x02:
        raise ValueError("no modulus INTEGER")
    modulus = der[inner:inner_end].lstrip(b"\x00")
    return int.from_bytes(modulus, "big").bit_length()


def check_key(resolver: Resolver, selector: str, domain: str) -> DkimKey:
    name = f"{selector}._domainkey.{domain}"
    answer = resolver.query(name, "TXT")
    key = DkimKey(selector, name, "missing", cnames=answer.cnames)
    if not answer.answered:
        key.status = "unknown"
        key.problems.append(f"TXT query for {name} got no answer ({answer.status})")
        return key
    texts = [t for t in answer.texts() if "p=" in t.replace(" ", "")]
    if not texts:
        key.problems.append(f"no DKIM key record at {name}" + (f" ({answer.error})" if answer.error else ""))
        return key
    if len(texts) > 1:
        key.status = "invalid"
        key.problems.append(f"{len(texts)} key records at {name}: verifiers may pick either")
        return key
    key.record = texts[0]
    _read_tags(key, parse_tags(texts[0]))
    return key


def _read_tags(key: DkimKey, tags: dict) -> None:
    if "v" in tags and tags["v"] != "DKIM1":
        key.status = "invalid"
        key.problems.append(f"v={tags['v']} (only DKIM1 exists)")
        return
    key.key_type = tags.get("k", "rsa").lower()
    key.testing = "y" in tags.get("t", "").lower().split(":")
    if key.key_type not in KEY_TYPES:
        key.status = "invalid"
        key.problems.append(f"k={key.key_type} is not one of {', '.join(KEY_TYPES)}")
        return
    if not tags.get("p"):
        key.status = "revoked"
        key.problems.append("p= is empty: the key is revoked, every signature with it fails")
        return
    try:
        raw = base64.b64decode(tags["p"], validate=True)
        key.key_bits = 256 if key.key_type == "ed25519" else rsa_modulus_bits(raw)
        if key.key_type == "ed25519" and len(raw) != 32:
            raise ValueError(f"an ed25519 key is 32 bytes, got {len(raw)}")
    except (binascii.Error, ValueError, IndexError) as exc:
        key.status = "invalid"
        key.problems.append(f"p= is not a usable {key.key_type} public key ({exc})")
        return
    key.status = "ok"
