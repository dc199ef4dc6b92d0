# SPDX-License-Identifier: GPL-3.0-or-later
"""The relay's certificate as the probe reports it: read from DER with no private API, names matched as Postfix does.

``cryptography`` (a test dependency through trustme, not one of the collection's modules) is the reference.
"""

from __future__ import annotations

import datetime
import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID

from ansible_collections.smtp.relay.plugins.module_utils._probe.certs import (
    CertificateError,
    certificate_summary,
    decode_certificate,
    expected_names,
    names_match,
)


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


def test_certificate_summary_counts_days_left():
    ca = trustme.CA()
    now = datetime.datetime.now(datetime.UTC)
    cert = ca.issue_cert("relay.example.test", "192.0.2.25", not_after=now + datetime.timedelta(days=10, hours=1))
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    summary = certificate_summary(der, now)
    assert summary["days_left"] == 10
    assert summary["expired"] is False
    assert summary["ip_addresses"] == ["192.0.2.25"]


@pytest.mark.parametrize(
    ("presented", "wanted", "match"),
    [
        (["relay.example.test"], ["relay.example.test"], "relay.example.test"),
        (["*.example.test"], ["relay.example.test"], "relay.example.test"),
        (["*.example.test"], ["a.relay.example.test"], None),
        (["relay.example.test"], [".example.test"], ".example.test"),
        (["other.test"], ["relay.example.test"], None),
    ],
)
def test_names_match_like_postfix(presented, wanted, match):
    cert = {"dns_names": presented, "ip_addresses": [], "subject": presented[0]}
    assert names_match(cert, wanted) == match


def test_expected_names_from_postfix_strategies():
    assert expected_names(["nexthop", "dot-nexthop"], "mx1.example.test", "example.test") == [
        "example.test",
        ".example.test",
    ]
    assert expected_names(["hostname"], "mx1.example.test", "example.test") == ["mx1.example.test"]


def der_of(cert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


@pytest.mark.parametrize(
    ("identities", "kw"),
    [
        (("relay.example.test", "192.0.2.25", "2001:db8::1"), {"common_name": "relay.example.test"}),
        (("*.example.test",), {"common_name": "Relais de démonstration"}),
        (("a.example.test", "b.example.test"), {}),
    ],
)
def test_decoded_certificate_agrees_with_cryptography(ca, identities, kw):
    der = der_of(ca.issue_cert(*identities, **kw))
    mine, theirs = decode_certificate(der), x509.load_der_x509_certificate(der)
    summary = certificate_summary(der)
    common_names = theirs.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    assert summary["subject"] == (common_names[0].value if common_names else None)
    assert summary["issuer"] == theirs.issuer.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value
    alt_names = theirs.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert mine["dns_names"] == alt_names.get_values_for_type(x509.DNSName)
    assert mine["ip_addresses"] == [str(ip) for ip in alt_names.get_values_for_type(x509.IPAddress)]
    assert mine["not_before"] == theirs.not_valid_before_utc  # 2000: UTCTime
    assert mine["not_after"] == theirs.not_valid_after_utc  # 3000: GeneralizedTime
    assert int(summary["serial"], 16) == theirs.serial_number
    assert summary["serial"] == summary["serial"].upper() and len(summary["serial"]) % 2 == 0


def test_an_expired_certificate_is_decoded_and_reported_expired(ca):
    now = datetime.datetime.now(datetime.UTC)
    cert = ca.issue_cert("relay.example.test", not_before=now - datetime.timedelta(days=90),
                         not_after=now - datetime.timedelta(days=2, hours=-1))  # fmt: skip
    summary = certificate_summary(der_of(cert), now)
    assert summary["expired"] is True
    assert summary["days_left"] == -2


@pytest.mark.parametrize("cut", [0, 1, 10, 100, -1])
def test_truncated_der_is_a_certificate_error(ca, cut):
    der = der_of(ca.issue_cert("relay.example.test"))
    with pytest.raises(CertificateError):
        decode_certificate(der[:cut])


def test_der_that_is_not_a_certificate_is_a_certificate_error():
    for data in (b"\x04\x03abc", b"\x30\x00", b"\x30\x03\x02\x01\x01", b"\x30\x80\x00\x00", b"\x1f\x01\x00"):
        with pytest.raises(CertificateError):
            decode_certificate(data)


def test_ip_addresses_match_as_addresses_not_as_text():
    cert = {"dns_names": [], "ip_addresses": ["2001:db8::1"], "subject": None}
    assert names_match(cert, ["2001:DB8:0:0:0:0:0:1"]) == "2001:DB8:0:0:0:0:0:1"
    assert names_match(cert, ["2001:db8::2"]) is None
