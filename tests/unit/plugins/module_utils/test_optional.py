# SPDX-License-Identifier: GPL-3.0-or-later
"""_optional: a missing library is found one way and reported one way, wherever it is needed."""

from __future__ import annotations

import pytest

from ansible_collections.smtp.relay.plugins.module_utils import _dns

from ansible_collections.smtp.relay.plugins.module_utils._allowlist import request as _allowlist

from ansible_collections.smtp.relay.plugins.module_utils._sender import engine as _sender


from ansible_collections.smtp.relay.plugins.module_utils._sender import spf as _spf
from ansible_collections.smtp.relay.plugins.module_utils._dns import make_resolver
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._optional import MissingLibrary, OptionalLibrary


def absent(name: str, debian: str) -> OptionalLibrary:
    try:
        __import__("smtp_relay_no_such_library")
    except ImportError:
        return OptionalLibrary.missing(name, debian)
    raise AssertionError("the library was meant to be missing")


def test_found_library_is_available_and_required_silently():
    library = OptionalLibrary.found("dnspython", "python3-dnspython")
    assert library.available and library.import_error is None
    library.require("to query DNS")


def test_missing_library_is_reported_as_ansible_does_with_its_traceback():
    library = absent("dnspython", "python3-dnspython")
    assert not library.available
    with pytest.raises(SmtpRelayError) as info:
        library.require("to query DNS")
    assert isinstance(info.value, MissingLibrary)
    assert info.value.msg.startswith("Failed to import the required Python library (dnspython) on ")
    assert "This is required to query DNS." in info.value.msg
    assert info.value.msg.endswith("ansible_python_interpreter. Debian package: python3-dnspython")
    assert info.value.details["missing_library"] == "dnspython"
    assert "smtp_relay_no_such_library" in info.value.details["exception"]
    assert library.not_installed("SPF not evaluated") == "dnspython is not installed on the host: SPF not evaluated"
    assert "python3-dnspython (Debian)" in library.install_hint


@pytest.fixture
def without_dnspython(monkeypatch):
    missing = absent("dnspython", "python3-dnspython")
    monkeypatch.setattr(_dns, "DNSPYTHON", missing)
    monkeypatch.setattr(_allowlist, "DNSPYTHON", missing)


@pytest.fixture
def without_pyspf(monkeypatch):
    monkeypatch.setattr(_spf, "PYSPF", absent("pyspf", "python3-spf"))


def test_features_that_need_dnspython_fail_the_same_way(without_dnspython):
    with pytest.raises(MissingLibrary, match=r"\(dnspython\).*This is required to query DNS\."):
        make_resolver(["192.0.2.53"])
    with pytest.raises(MissingLibrary, match=r"\(dnspython\).*This is required to query the DNS servers given"):
        _allowlist.make_resolver(["192.0.2.53"])
    make_resolver(backend=StaticBackend({}))  # a resolver that does not ask dnspython still works


def test_mx_lookup_without_dnspython_is_unknown_not_an_error(without_dnspython):
    # The host's own resolver (the probe's and the allowlist's default) has no C library call for MX.
    answer = make_resolver(system=True).query("example.org", "MX")
    assert not answer.answered
    assert "dnspython is not installed on the host: MX records cannot be read" in answer.error


def test_spf_without_pyspf_fails_evaluation_and_skips_the_relay_check(without_pyspf):
    resolver = make_resolver(backend=StaticBackend({}))
    with pytest.raises(MissingLibrary, match=r"\(pyspf\).*This is required to evaluate SPF\."):
        _spf.evaluate(resolver, "192.0.2.1", "postmaster@example.org", "relay.example.org")
    checks, verdict = _sender.relay_spf_checks(resolver, "example.org", _sender.Relay(["192.0.2.1"], "relay_ips"), "h")
    assert verdict is None
    assert [(c["id"], c["status"], c["message"]) for c in checks] == [
        ("spf.relay_not_authorized", "skip", "pyspf is not installed on the host: SPF not evaluated")
    ]
    assert "python3-spf (Debian)" in checks[0]["hint"]
