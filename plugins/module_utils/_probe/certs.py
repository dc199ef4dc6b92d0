# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the relay's certificate as the probe reports it, and its names matched as Postfix does.

Certificates are read from their DER bytes (``getpeercert(binary_form=True)``) by the small reader below, because the
standard library describes a certificate only for a peer it verified (``getpeercert()`` is empty otherwise) and the
probe must describe the others too: at smtp_tls_security_level = encrypt nothing is verified, a certificate from the
wrong CA or an expired one fails verification, and the second fetch for SNI is unverified. ``cryptography`` is not a
dependency of the collection's modules. The reader knows only the parts of X.509 (RFC 5280) reported here: serial,
issuer, validity, subject and the subjectAltName's DNS names and IP addresses; anything malformed in those raises
``CertificateError`` (a ValueError).
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re

# DER tags (X.690): universal types, and the context-specific ones of TBSCertificate and GeneralName.
_BOOLEAN, _INTEGER, _OCTET_STRING, _OID = 0x01, 0x02, 0x04, 0x06
_SEQUENCE, _SET = 0x30, 0x31
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_VERSION, _EXTENSIONS = 0xA0, 0xA3  # [0] EXPLICIT, [3] EXPLICIT
_DNS_NAME, _IP_ADDRESS = 0x82, 0x87  # GeneralName [2] IA5String, [7] OCTET STRING (both IMPLICIT)
# String types a Name attribute may have, and how their bytes become text.
_STRINGS = {
    0x0C: "utf-8",  # UTF8String
    0x13: "ascii",  # PrintableString
    0x16: "ascii",  # IA5String
    0x14: "latin-1",  # TeletexString: in practice Latin-1
    0x1E: "utf-16-be",  # BMPString
    0x1C: "utf-32-be",  # UniversalString
}
# OIDs by their DER content bytes: commonName 2.5.4.3, organizationName 2.5.4.10, subjectAltName 2.5.29.17.
_COMMON_NAME, _ORGANIZATION, _SUBJECT_ALT_NAME = b"\x55\x04\x03", b"\x55\x04\x0a", b"\x55\x1d\x11"
_TIME = re.compile(r"^(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d+)?Z$")


class CertificateError(ValueError):
    """The certificate's DER is not what X.509 says it must be."""


def _element(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, content, offset after it) of the DER element starting at ``offset``."""
    if offset + 2 > len(data):
        raise CertificateError("truncated DER element")
    tag, length = data[offset], data[offset + 1]
    if tag & 0x1F == 0x1F:
        raise CertificateError("a high tag number, which X.509 does not use")
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or offset + count > len(data):
            raise CertificateError("a DER length that is indefinite or out of range")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    end = offset + length
    if end > len(data):
        raise CertificateError("truncated DER element")
    return tag, data[offset:end], end


def _single(content: bytes, what: str) -> tuple[int, bytes]:
    """(tag, content) of the one element that ``content`` must be."""
    tag, value, end = _element(content, 0)
    if end != len(content):
        raise CertificateError(f"{what}: bytes after the DER element")
    return tag, value


def _children(content: bytes) -> list[tuple[int, bytes]]:
    """The elements of a constructed value, in order."""
    items, offset = [], 0
    while offset < len(content):
        tag, value, offset = _element(content, offset)
        items.append((tag, value))
    return items


def _expect(item: tuple[int, bytes], tag: int, what: str) -> bytes:
    if item[0] != tag:
        raise CertificateError(f"{what}: DER tag {item[0]:#04x}, expected {tag:#04x}")
    return item[1]


def _text(tag: int, value: bytes) -> str:
    return value.decode(_STRINGS.get(tag, "latin-1"), "replace")


def _name(content: bytes) -> list[tuple[bytes, str]]:
    """A Name (SEQUENCE OF SET OF {type, value}) as (OID bytes, text) pairs, in order."""
    attributes = []
    for rdn in _children(content):
        for attribute in _children(_expect(rdn, _SET, "name")):
            parts = _children(_expect(attribute, _SEQUENCE, "name attribute"))
            if len(parts) != 2:
                raise CertificateError("a name attribute that is not a type and a value")
            attributes.append((_expect(parts[0], _OID, "name attribute type"), _text(*parts[1])))
    return attributes


def _first(attributes: list[tuple[bytes, str]], oid: bytes) -> str | None:
    return next((value for key, value in attributes if key == oid), None)


def _time(item: tuple[int, bytes]) -> datetime.datetime:
    tag, value = item
    match = _TIME.match(value.decode("ascii", "replace"))
    if tag not in (_UTC_TIME, _GENERALIZED_TIME) or not match:
        raise CertificateError(f"a validity date that is not a UTC time: {value!r}")
    year, month, day, hour, minute, second = (int(g or 0) for g in match.groups())
    if len(match.group(1)) == 2:
        year += 1900 if year >= 50 else 2000  # RFC 5280 4.1.2.5.1
    try:
        return datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone.utc)
    except ValueError as e:
        raise CertificateError(f"a validity date that does not exist: {value!r}") from e


def _serial(value: bytes) -> str:
    """The serial number in hex, as OpenSSL (and so getpeercert) writes it: upper case, whole bytes."""
    number = int.from_bytes(value, "big", signed=True)
    digits = f"{abs(number):X}"
    return ("-" if number < 0 else "") + digits.zfill(len(digits) + len(digits) % 2)


def _alt_names(extensions: bytes | None) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) of the subjectAltName extension, if there is one."""
    dns_names: list[str] = []
    ip_addresses: list[str] = []
    if extensions is None:
        return dns_names, ip_addresses
    for extension in _children(_expect(_single(extensions, "extensions"), _SEQUENCE, "extensions")):
        parts = _children(_expect(extension, _SEQUENCE, "extension"))
        if not parts or _expect(parts[0], _OID, "extension id") != _SUBJECT_ALT_NAME:
            continue
        value = _expect(parts[-1], _OCTET_STRING, "subjectAltName")
        for tag, name in _children(_expect(_single(value, "subjectAltName"), _SEQUENCE, "subjectAltName")):
            if tag == _DNS_NAME:
                dns_names.append(name.decode("ascii", "replace"))
            elif tag == _IP_ADDRESS and len(name) in (4, 16):
                ip_addresses.append(str(ipaddress.ip_address(name)))
    return dns_names, ip_addresses


def decode_certificate(der: bytes) -> dict:
    """The certificate's fields the probe reports: subject and issuer attributes, serial, validity, alt names."""
    try:
        return _decode(der)
    except IndexError:
        raise CertificateError("a certificate with parts missing") from None


def _decode(der: bytes) -> dict:
    certificate = _expect(_single(der, "certificate"), _SEQUENCE, "certificate")
    fields = _children(_expect(_children(certificate)[0], _SEQUENCE, "tbsCertificate"))
    if fields and fields[0][0] == _VERSION:
        fields = fields[1:]
    if len(fields) < 6:
        raise CertificateError("a tbsCertificate with fields missing")
    validity = _children(_expect(fields[3], _SEQUENCE, "validity"))
    if len(validity) != 2:
        raise CertificateError("a validity that is not two dates")
    dns_names, ip_addresses = _alt_names(next((value for tag, value in fields[6:] if tag == _EXTENSIONS), None))
    return {
        "serial": _serial(_expect(fields[0], _INTEGER, "serialNumber")),
        "issuer": _name(_expect(fields[2], _SEQUENCE, "issuer")),
        "not_before": _time(validity[0]),
        "not_after": _time(validity[1]),
        "subject": _name(_expect(fields[4], _SEQUENCE, "subject")),
        "dns_names": dns_names,
        "ip_addresses": ip_addresses,
    }


def certificate_summary(der: bytes, now: datetime.datetime | None = None) -> dict:
    now = now or datetime.datetime.now(datetime.timezone.utc)
    info = decode_certificate(der)
    not_after = info["not_after"]
    return {
        "subject": _first(info["subject"], _COMMON_NAME),
        "issuer": _first(info["issuer"], _COMMON_NAME) or _first(info["issuer"], _ORGANIZATION),
        "dns_names": info["dns_names"],
        "ip_addresses": info["ip_addresses"],
        "not_before": info["not_before"].isoformat(),
        "not_after": not_after.isoformat(),
        "days_left": int((not_after - now).total_seconds() // 86400),
        "expired": not_after < now,
        "serial": info["serial"],
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def _wildcard_match(cert_name: str, wanted: str) -> bool:
    cert_name, wanted = cert_name.lower().rstrip("."), wanted.lower().rstrip(".")
    if cert_name == wanted:
        return True
    if cert_name.startswith("*."):
        head, _unused, rest = wanted.partition(".")
        return bool(head) and rest == cert_name[2:]
    return False


def _is_address_of(name: str, addresses: list[str]) -> bool:
    """``name`` is an IP address the certificate holds (compared as addresses: 2001:DB8::1 is 2001:db8::1)."""
    try:
        wanted = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return any(ipaddress.ip_address(a) == wanted for a in addresses)


def expected_names(strategies, hostname: str, nexthop: str) -> list[str]:
    """Postfix's smtp_tls_*_cert_match strategies -> names; a leading dot means 'any subdomain of'."""
    names = []
    for strategy in strategies:
        s = strategy.strip()
        if s == "hostname":
            names.append(hostname)
        elif s == "nexthop":
            names.append(nexthop)
        elif s == "dot-nexthop":
            names.append("." + nexthop)
        elif s:
            names.append(s)
    return list(dict.fromkeys(names))


def names_match(cert: dict, wanted: list[str]) -> str | None:
    """The expected name the certificate satisfies (DNS names, else CN, as Postfix does), or None."""
    presented = cert["dns_names"] or ([cert["subject"]] if cert.get("subject") else [])
    for name in wanted:
        if name.startswith("."):
            if any(p.lower().rstrip(".").endswith(name.lower()) for p in presented):
                return name
        elif any(_wildcard_match(p, name) for p in presented) or _is_address_of(name, cert["ip_addresses"]):
            return name
    return None
