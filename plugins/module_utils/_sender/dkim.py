# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: DKIM key records (RFC 6376 3.6.1): selectors, lookup through CNAMEs, tags, key type
and size, and sender_check's dkim.* checks.

The tag=value list parser here is also DMARC's: RFC 7489 6.4 writes DMARC records in DKIM's tag-list syntax.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, UNKNOWN, WARN, check, shown
from ansible_collections.smtp.relay.plugins.module_utils._dns import Resolver
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError

MIN_RSA_BITS = 1024  # receivers refuse shorter keys (RFC 8301)
GOOD_RSA_BITS = 2048
KEY_TYPES = ("rsa", "ed25519")
_SELECTOR_LABEL = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")


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


def parse_selectors(entries, field_name: str = "dkim_selectors") -> list[str]:
    """Selectors in lower case; anything that is not one or more DNS labels is refused, naming ``field_name``."""
    selectors = []
    for entry in entries or []:
        text = entry.strip().lower() if isinstance(entry, str) else ""
        labels = text.split(".")
        if not text or any(not label or len(label) > 63 or set(label) - _SELECTOR_LABEL for label in labels):
            raise SmtpRelayError(
                f"{field_name}: {shown(entry)} is not a selector; accepted: DNS labels such as s1 or mail.2024",
                field=field_name,
            )
        selectors.append(text)
    return selectors


def tag_list(text: str) -> list[tuple[str, str | None, str]]:
    """The non-empty parts of a tag=value list (RFC 6376 3.2), in order: (part, tag, value), all stripped.

    Tag names are lower-cased; ``tag`` is None for a part without "=".
    """
    parts = []
    for raw in text.split(";"):
        part = raw.strip()
        if part:
            key, sep, value = part.partition("=")
            parts.append((part, key.strip().lower() if sep else None, value.strip()))
    return parts


def parse_tags(text: str) -> dict:
    """Tags of a key record; white space inside values is folding (the base64 of p= is often split)."""
    return {tag: "".join(value.split()) for _part, tag, value in tag_list(text) if tag is not None}


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


# --- checks ----------------------------------------------------------------------------------------------------------


def dkim_checks(resolver: Resolver, domain: str, selectors: list[str]) -> tuple[list[dict], bool | None]:
    """dkim.* per selector, and whether at least one usable key was found (None: unknown)."""
    checks, usable = [], []
    for selector in selectors:
        key = check_key(resolver, selector, domain)
        extra = {"selector": selector, "name": key.name, "cname_chain": list(key.cnames)}
        problems = "; ".join(key.problems)
        if key.status == "unknown":
            checks.append(check("dkim.record", UNKNOWN, problems, "dkim", **extra))
            usable.append(None)
            continue
        if key.status in ("missing", "invalid"):
            checks.append(
                check(
                    "dkim.record",
                    FAIL,
                    problems,
                    "dkim",
                    **extra,
                    hint="publish the signer's public key at this name (often a CNAME to the provider)",
                )
            )
            usable.append(False)
            continue
        via = f" via {' -> '.join(key.cnames)}" if key.cnames else ""
        checks.append(check("dkim.record", PASS, f"key record found at {key.name}{via}", "dkim", **extra))
        checks.append(_key_check(key, extra))
        checks.append(
            check(
                "dkim.testing",
                WARN,
                f"{key.name} has t=y: verifiers may treat signatures as unsigned",
                "dkim",
                hint="remove t=y once signing works",
                **extra,
            )
            if key.testing
            else check("dkim.testing", PASS, f"{key.name} is not in testing mode", "dkim", **extra)
        )
        usable.append(key.status == "ok" and (key.key_type != "rsa" or key.key_bits >= MIN_RSA_BITS))
    if not usable:
        return checks, None
    if True in usable:
        return checks, True
    return checks, None if None in usable else False


def _key_check(key, extra) -> dict:
    info = {"key_type": key.key_type, "key_bits": key.key_bits, **extra}
    if key.status == "revoked":
        return check(
            "dkim.key",
            FAIL,
            f"{key.name}: key revoked (empty p=)",
            "dkim",
            **info,
            hint="publish a current key or stop signing with this selector",
        )
    if key.key_type == "rsa" and key.key_bits < MIN_RSA_BITS:
        return check(
            "dkim.key",
            FAIL,
            f"{key.name}: RSA key of {key.key_bits} bits; receivers refuse < 1024",
            "dkim",
            **info,
            hint="rotate to a 2048-bit RSA key",
        )
    if key.key_type == "rsa" and key.key_bits < GOOD_RSA_BITS:
        return check(
            "dkim.key",
            WARN,
            f"{key.name}: RSA key of {key.key_bits} bits; 2048 is expected",
            "dkim",
            **info,
            hint="rotate to a 2048-bit RSA key",
        )
    return check("dkim.key", PASS, f"{key.name}: {key.key_type} key of {key.key_bits} bits", "dkim", **info)
