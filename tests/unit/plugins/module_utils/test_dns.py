# SPDX-License-Identifier: GPL-3.0-or-later
"""_dns: cache (one question per name and type, even under concurrency), CNAME chains, deadlines, the pool."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ansible_collections.smtp.relay.plugins.module_utils._dns import (
    ERROR,
    NODATA,
    NXDOMAIN,
    OK,
    TIMEOUT,
    Answer,
    Resolver,
    SystemBackend,
    address_from_reverse_name,
    make_resolver,
    reverse_name,
    run_bounded,
)
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from tests.unit.plugins.module_utils.dns_fakes import StaticBackend


class SlowBackend(StaticBackend):
    def lookup(self, name, rdtype, timeout):
        time.sleep(0.05)
        return super().lookup(name, rdtype, timeout)


def test_statuses_tell_nxdomain_nodata_and_timeout_apart():
    r = Resolver(StaticBackend({("a.org", "A"): ["127.0.0.1"]}, timeouts=["slow.org"]), timeout=1)
    assert r.query("a.org", "A").status == OK
    assert r.query("A.org.", "a").records == ("127.0.0.1",)
    assert r.query("a.org", "MX").status == NODATA
    assert r.query("b.org", "A").status == NXDOMAIN
    slow = r.query("slow.org", "A")
    assert slow.status == TIMEOUT
    assert not slow.answered
    assert not slow.empty


def test_each_name_is_asked_once_even_concurrently():
    backend = SlowBackend({("a.org", "TXT"): [(b"x",)]})
    r = Resolver(backend, timeout=1)
    threads = [threading.Thread(target=r.query, args=("a.org", "TXT")) for _unused in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r.query("A.ORG.", "TXT")
    assert backend.asked == [("a.org", "TXT")]
    assert r.asked == 1


def test_cname_chain_is_followed_and_reported():
    backend = StaticBackend(
        {("x.org", "CNAME"): ["y.org"], ("y.org", "CNAME"): ["z.org"], ("z.org", "TXT"): [(b"v=DKIM1; p=",)]}
    )
    answer = Resolver(backend).query("x.org", "TXT")
    assert answer.status == OK
    assert answer.cnames == ("y.org", "z.org")
    assert answer.texts() == ["v=DKIM1; p="]


def test_cname_loop_is_no_data_not_a_hang():
    backend = StaticBackend({("x.org", "CNAME"): ["y.org"], ("y.org", "CNAME"): ["x.org"]})
    answer = Resolver(backend).query("x.org", "TXT")
    assert answer.status == NODATA
    assert "loop" in answer.error


def test_deadline_turns_later_questions_into_timeouts():
    r = Resolver(SlowBackend({("a.org", "A"): ["127.0.0.1"]}), timeout=1, deadline=0.01)
    time.sleep(0.02)
    answer = r.query("a.org", "A")
    assert answer.status == TIMEOUT
    assert "deadline" in answer.error
    assert r.asked == 0


def test_per_query_budget_is_capped_by_the_deadline():
    seen = []

    class Recorder:
        def lookup(self, name, rdtype, timeout):
            seen.append(timeout)
            return Answer(name, rdtype, NXDOMAIN)

    Resolver(Recorder(), timeout=5, deadline=0.5).query("a.org", "A")
    assert 0 < seen[0] <= 0.5


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"nameservers": ["ns.example.org"]}, "nameservers"),
        ({"port": 0}, "port"),
        ({"timeout": 0}, "timeout"),
        ({"deadline": -1}, "deadline"),
    ],
)
def test_make_resolver_refuses_bad_options(kwargs, field):
    with pytest.raises(SmtpRelayError) as err:
        make_resolver(backend=StaticBackend({}), **kwargs)
    assert err.value.details["field"] == field


def test_make_resolver_accepts_servers_and_port():
    r = make_resolver(["127.0.0.1", " ::1 "], port=5353, timeout=2, deadline=10)
    assert r.backend.nameservers == ["127.0.0.1", "::1"]
    assert r.backend.port == 5353
    assert r.timeout == 2


def test_run_bounded_keeps_order_and_bounds_threads():
    active, peak, lock = [0], [0], threading.Lock()

    def work(i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return i * 2

    assert run_bounded(work, range(20), 3) == [i * 2 for i in range(20)]
    assert 1 < peak[0] <= 3
    with pytest.raises(SmtpRelayError):
        run_bounded(work, [1], 0)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": float("inf")}, "timeout"),
        ({"deadline": float("nan")}, "deadline"),
        ({"port": True}, "port"),
        ({"port": "\uff15\uff13"}, "port"),
        ({"nameservers": [1]}, "nameservers"),
    ],
)
def test_make_resolver_refuses_what_disables_its_bounds(kwargs, field):
    # NaN compares false with everything: "timeout <= 0" let it through and no question was ever bounded.
    with pytest.raises(SmtpRelayError) as err:
        make_resolver(backend=StaticBackend({}), **kwargs)
    assert err.value.details["field"] == field


def test_resolver_refuses_nan_timeout():
    with pytest.raises(SmtpRelayError):
        Resolver(StaticBackend({}), timeout=float("nan"))


# -- the host's own resolver (nsswitch), behind the same seam ----------------------------------------------------


@pytest.fixture
def c_library(monkeypatch):
    """getaddrinfo / gethostbyaddr answering from a table, so no test reads the controller's /etc/hosts."""
    table = {"app.example": {socket.AF_INET: ["192.0.2.10"], socket.AF_INET6: ["2001:db8::10%eth0"]}}
    names = {"192.0.2.10": ("app.example.", ["alias.example"])}

    def getaddrinfo(host, port, family=0, kind=0):
        if host == "slow.example":
            time.sleep(1)
        if host == "broken.example":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        found = table.get(host, {}).get(family)
        if not found:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(family, kind, 6, "", (a, 0)) for a in found]

    def gethostbyaddr(address):
        if address not in names:
            raise socket.herror(1, "Unknown host")
        return names[address][0], names[address][1], [address]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "gethostbyaddr", gethostbyaddr)


def test_system_backend_reads_addresses_and_names_like_the_hosts_programs(c_library):
    resolver = make_resolver(system=True, timeout=2)
    found, answers = resolver.addresses("app.example")
    assert found == ["192.0.2.10", "2001:db8::10"]  # the scope id of a link-local style answer is dropped
    assert [a.status for a in answers] == [OK, OK]
    assert resolver.names("192.0.2.10").records == ("app.example", "alias.example")


def test_system_backend_tells_no_data_from_no_answer(c_library):
    resolver = make_resolver(system=True, timeout=0.2)
    assert resolver.query("missing.example", "A").status == NODATA
    assert resolver.names("192.0.2.99").status == NXDOMAIN
    unsure = resolver.query("broken.example", "A")
    assert unsure.status == ERROR and not unsure.answered
    started = time.monotonic()
    slow = resolver.query("slow.example", "A")
    assert slow.status == TIMEOUT and time.monotonic() - started < 0.8


def test_system_is_only_the_default_when_no_nameservers_are_given(c_library):
    assert isinstance(make_resolver(system=True).backend, SystemBackend)
    assert not isinstance(make_resolver(["127.0.0.1"], system=True).backend, SystemBackend)
    assert not isinstance(make_resolver().backend, SystemBackend)


@pytest.mark.parametrize(
    ("address", "name"),
    [
        ("192.0.2.10", "10.2.0.192.in-addr.arpa"),
        ("2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"),
    ],
)
def test_reverse_names_round_trip(address, name):
    assert reverse_name(address) == name
    assert address_from_reverse_name(name.upper() + ".") == address


@pytest.mark.parametrize("name", ["1.2.3.in-addr.arpa", "256.1.2.3.in-addr.arpa", "x.ip6.arpa", "example.org", ""])
def test_other_names_are_not_reverse_names(name):
    assert address_from_reverse_name(name) is None


def test_a_host_without_resolv_conf_gets_an_error_answer_not_a_crash(monkeypatch):
    dns_resolver = pytest.importorskip("dns.resolver")

    def no_configuration(self, *args, **kwargs):
        raise dns_resolver.NoResolverConfiguration("no nameservers")

    monkeypatch.setattr(dns_resolver.Resolver, "__init__", no_configuration)
    answer = make_resolver(timeout=1).query("example.org", "MX")
    assert answer.status == ERROR and not answer.answered
    assert "no nameservers" in answer.error
