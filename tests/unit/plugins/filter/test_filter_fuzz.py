# SPDX-License-Identifier: GPL-3.0-or-later
"""Generated bad input for every filter and for the role's planner (smtp.relay._relay_settings).

Outcome per input: accepted, and then it round-trips where the filter has an inverse (relayhost and
parse_relayhost), or refused with an AnsibleFilterError that names the argument (the planner: whose message starts
with the role variable's name, or names the host fact); never another exception, never a secret in a message or a
plan. The bugs these inputs found are pinned one input each in test_filter_fuzz_findings.py.
SMTP_RELAY_FUZZ_EXAMPLES sets the number of inputs per test (default 150); the counts tried are printed with -s.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import unicodedata

import pytest
from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.filter._relay_settings import relay_settings, role_spec
from ansible_collections.smtp.relay.plugins.filter.allowlist import allowlist_fleet_csv, allowlist_fleet_markdown
from ansible_collections.smtp.relay.plugins.filter.parse_relayhost import parse_relayhost_filter
from ansible_collections.smtp.relay.plugins.filter.relayhost import relayhost_filter
from ansible_collections.smtp.relay.plugins.filter.ses_smtp_password import ses_smtp_password_filter
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.model import FIELD_NAMES
from tests.unit.plugins.modules.fuzz_support import SECRET_HEAD, SECRET_TAIL, secret
from tests.unit.plugins.modules.test_option_fuzz import FUZZ, anything, odd_list, odd_number
from tests.unit.plugins.modules.test_option_fuzz import odd_text

TRIED: dict[str, int] = {}


def mix(*strategies):
    """Each strategy drawn about as often as the others (st.one_of leans towards the ones with more structure)."""
    return st.sampled_from(strategies).flatmap(lambda strategy: strategy)


def _count(name: str, outcome: str) -> str:
    for key in (f"{name}: tried", f"{name}: {outcome}"):
        TRIED[key] = TRIED.get(key, 0) + 1
    return outcome


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print("\ngenerated inputs tried (filters):", json.dumps(TRIED, sort_keys=True))


def _refusal(call) -> tuple[object, str | None]:
    """(result, None) or (None, message of the AnsibleFilterError); any other exception fails the test."""
    try:
        return call(), None
    except AnsibleFilterError as e:
        return None, e.message


def _leaks(text: str) -> bool:
    return SECRET_HEAD in text or SECRET_TAIL in text


def _line_breaking(text: str) -> bool:
    """A newline or control character: what would end a main.cf line or hide in one."""
    return any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)


# -- relayhost and parse_relayhost ---------------------------------------------------------------------------

GOOD_HOSTS = ["relay.example.org", "Relay.Example.ORG.", "192.0.2.25", "2001:db8::25", "ipv6:2001:DB8::25", "::1"]
BAD_HOSTS = ["a", "-bad.example", "relay.example.org:587", "[relay.example.org]", "1.2.3", "a_b.example", "xn--a.b"]
HOSTS = GOOD_HOSTS + BAD_HOSTS
PORTS = [25, 587, "587", "submission", "submissions", "smtp", 0, 65536, -1, "0587", " 25", 5.0, True, "25x", "9" * 4301]
MX = [True, False, None, "yes", "no", "true", "false", "0", "1", "maybe", 2, []]
good_relay = st.fixed_dictionaries(
    {"host": st.sampled_from(GOOD_HOSTS)},
    optional={"port": st.sampled_from(PORTS[:6]), "mx_lookup": st.sampled_from(MX)},
)
relay = mix(
    good_relay,
    st.fixed_dictionaries(
        {"host": st.one_of(st.sampled_from(HOSTS), odd_text)},
        optional={"port": st.one_of(st.sampled_from(PORTS), odd_number), "mx_lookup": st.sampled_from(MX)},
    ),
    st.dictionaries(st.sampled_from(["host", "port", "mx_lookup", "is_ip", "extra"]), anything, max_size=3),
    anything,
)
relays = mix(relay, st.lists(good_relay, max_size=3), st.lists(relay, max_size=3))


def _mx_meant(value) -> bool | None:
    """What mx_lookup means to Ansible (and to the role's planner); None for what is not a boolean."""
    if value is None:
        return False
    try:
        return boolean(value, strict=True)
    except TypeError:
        return None


@FUZZ
@given(value=relays)
def test_relayhost_round_trips_through_parse_relayhost(value):
    text, message = _refusal(lambda: relayhost_filter(value))
    if message is not None:
        _count("relayhost", "refused")
        assert any(word in message for word in ("relay", "host", "port", "mx_lookup")), message
        return
    parsed = parse_relayhost_filter(text)
    assert parse_relayhost_filter(relayhost_filter(parsed)) == parsed, (value, text)
    given_relays = value if isinstance(value, list) else [value]
    assert len(parsed) == len(given_relays)
    _count("relayhost", "accepted")
    for wanted, got in zip(given_relays, parsed, strict=True):
        # Only booleans Ansible's way get through: "false" and "no" mean false (test_relayhost_mx_lookup_*).
        assert _mx_meant(wanted.get("mx_lookup")) is not None, (wanted, text)
        if not got["is_ip"]:
            assert got["mx_lookup"] is _mx_meant(wanted.get("mx_lookup")), (wanted, text)
        assert got["host"].lower() == wanted["host"].lower().removeprefix("ipv6:") or got["is_ip"], (wanted, got)


RELAYHOSTS = "[relay.example.org]:587|relay.example.org|[ipv6:::1]:25, b.example||, |[a:587]|a.example:smtp|[1.2.3.4]"
relayhost_text = mix(
    st.sampled_from([*RELAYHOSTS.split("|"), "[A.Example.]:0587", "1.2.3.4", "[::1]", "[a.example]:" + "1" * 4301]),
    st.builds(
        lambda a, b, c: a + b + c,
        st.sampled_from(["[", "", "ipv6:"]),
        st.sampled_from([*HOSTS, ""]),
        st.sampled_from(["]:587", ":25", "]", ", x.example", "]:submission", ":0"]),
    ),
    odd_text,
    anything,
)


@FUZZ
@given(value=relayhost_text)
def test_parse_relayhost_round_trips_through_relayhost(value):
    parsed, message = _refusal(lambda: parse_relayhost_filter(value))
    if message is not None:
        _count("parse_relayhost", "refused")
        assert "relayhost" in message, message
        return
    _count("parse_relayhost", "accepted")
    assert all(set(d) == {"host", "port", "mx_lookup", "is_ip"} and 1 <= d["port"] <= 65535 for d in parsed), parsed
    assert parse_relayhost_filter(relayhost_filter(parsed)) == parsed, (value, parsed)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# -- ses_smtp_password ----------------------------------------------------------------------------------------

REGIONS = ["eu-west-1", "us-east-1", "EU-WEST-1", "mars-1", "", " eu-west-1", "eu-west-1\n", None, 5, ["eu-west-1"]]


@FUZZ
@given(
    key=mix(secret, st.sampled_from(["", "\udcff", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]), anything),
    region=mix(st.sampled_from(REGIONS[:2]), st.sampled_from(REGIONS), odd_text),
)
def test_ses_smtp_password(key, region):
    password, message = _refusal(lambda: ses_smtp_password_filter(key, region))
    if message is not None:
        _count("ses_smtp_password", "refused")
        assert "region" in message or "secret access key" in message, message
        assert not _leaks(message), message
        return
    raw = base64.b64decode(password, validate=True)
    assert len(password) == 44 and raw[0] == 4 and len(raw) == 33
    assert ses_smtp_password_filter(key, region) == password
    # The planner's rule for postfix_relay_ses_secret_access_key (test_ses_key_with_white_space_is_refused).
    assert key == key.strip() and not _line_breaking(key) and _utf8(key), "key with white space accepted"
    _count("ses_smtp_password", "accepted")


# -- allowlist fleet filters ----------------------------------------------------------------------------------

REQUEST_VALUES = {
    "fqdn": ["h1.example.test", "h2.example.test", "=1+1", None, ""],
    "ipv4": [["10.89.0.11"], [], ["0.0.0.0/0"], "10.0.0.1", ["10.0.0.1/8"]],
    "ipv6": [["fd00::11"], ["::/0"], []],
    "team": ["Shop", "=SUM(A1)", "-Ops", "a,b", 'q"q'],
}
request = mix(
    st.fixed_dictionaries(
        {"fqdn": st.one_of(st.sampled_from(REQUEST_VALUES["fqdn"]), odd_text)},
        optional={
            n: st.one_of(st.sampled_from(REQUEST_VALUES.get(n, ["x"])), odd_text, odd_list) for n in FIELD_NAMES[1:]
        },
    ),
    anything,
)
requests = mix(st.lists(request, max_size=3), request)
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str:
    text = "" if value is None else " ".join(str(v) for v in value) if isinstance(value, list) else str(value)
    return "'" + text if text.startswith(TRIGGERS) else text


@FUZZ
@given(value=requests)
def test_allowlist_fleet_csv(value):
    text, message = _refusal(lambda: allowlist_fleet_csv(value))
    if message is not None:
        _count("allowlist_fleet_csv", "refused")
        assert any(name in message for name in (*FIELD_NAMES, "request")), message
        return
    _count("allowlist_fleet_csv", "accepted")
    limit = csv.field_size_limit(1 << 24)  # generated values reach 200 000 characters
    try:
        rows = list(csv.reader(io.StringIO(text, newline="")))
    finally:
        csv.field_size_limit(limit)
    given_requests = value if isinstance(value, list) else [value]
    assert rows[0] == list(FIELD_NAMES) and len(rows) == 1 + len(given_requests)
    wanted = sorted([_cell(r.get(n)) for n in FIELD_NAMES] for r in given_requests)
    assert sorted(rows[1:]) == wanted


@FUZZ
@given(value=requests, title=st.one_of(st.just("Allowlist request"), odd_text))
def test_allowlist_fleet_markdown(value, title):
    text, message = _refusal(lambda: allowlist_fleet_markdown(value, title))
    if message is not None:
        _count("allowlist_fleet_markdown", "refused")
        assert any(name in message for name in (*FIELD_NAMES, "request")), message
        return
    given_requests = value if isinstance(value, list) else [value]
    lines = text.split("\n")
    _count("allowlist_fleet_markdown", "accepted")
    # A line break of a value (or the title) is neutralised (test_fleet_markdown_values_stay_in_their_row).
    assert len(lines) == 5 + len(given_requests) and not _line_breaking(text.replace("\n", "")), text
    assert lines[0].startswith("# ") and lines[1] == "" and lines[-1] == ""
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines[4:-1]), text


# -- the role's planner ---------------------------------------------------------------------------------------

SPEC = role_spec()
SECRETS = sorted(name for name, option in SPEC.items() if option.get("no_log"))
PLAUSIBLE = {
    "postfix_relay_host": ["relay.example.org", "smtp.campus.example.edu", "192.0.2.25", "2001:db8::25", ""],
    "postfix_relay_port": [587, 465, 25, 2525, 30002, "587"],
    "postfix_relay_backup_hosts": [[{"host": "b.example.org"}], [{"host": "c.example.org", "port": 465}], []],
    "postfix_relay_ca_file": ["/etc/ssl/certs/ca-certificates.crt", ""],
    "postfix_relay_ses_region": ["eu-west-1", "us-east-1"],
    "postfix_relay_username": ["u", "apikey", ""],
    "postfix_myhostname": ["web1.example.org", ""],
    "postfix_myorigin": ["example.org", ""],
    "postfix_sender_address": ["noreply@example.org", ""],
    "postfix_sender_canonical": [{"root": "ops@example.org"}, {}],
    "postfix_allowed_sender_domains": [["example.org"], ["*.example.org"], []],
    "postfix_rate_delay": ["1s", "2m", ""],
    "postfix_relay_concurrency": [1, 10, "5"],
    "postfix_local_mail_to": ["ops@example.org", ""],
    "postfix_local_recipients": [["root"], ["root", "www-data"]],
    "postfix_queue_lifetime": ["2d", "5h", ""],
    "postfix_delay_warning_time": ["4h", "0", ""],
    "postfix_main_cf": [{"smtp_tls_loglevel": 2}, {"smtp_tls_ciphers": "high"}, {"inet_protocols": None}, {}],
}
BOOLEAN_TEXT = [True, False, "yes", "no", "true", "False", "1", "0", "on", "maybe", "", None]


def _variable(name: str, option: dict):
    """Plausible values of the variable's type, odd ones, and values of other types."""
    kind = option.get("type", "str")
    if option.get("no_log"):
        return mix(secret, st.sampled_from(["", "s3cret-Pa55"]), odd_text)
    plausible = list(option.get("choices") or PLAUSIBLE.get(name) or (BOOLEAN_TEXT if kind == "bool" else [""]))
    odd = {"int": odd_number, "list": odd_list, "dict": st.dictionaries(odd_text, anything, max_size=3)}
    return mix(st.sampled_from(plausible), odd.get(kind, odd_text), anything)


VARIABLES = {name: _variable(name, option) for name, option in SPEC.items()}
host_facts = mix(
    st.just({"fqdn": "web1.example.org", "hostname": "web1", "ca_bundle": "/etc/ssl/certs/ca-certificates.crt"}),
    st.fixed_dictionaries(
        {},
        optional={
            k: mix(st.sampled_from(["web1.example.org", "web1", ""]), odd_text, anything)
            for k in ("fqdn", "hostname", "ca_bundle", "config_dir", "map_type")
        },
    ),
)


def _bad_facts(host: dict) -> list[str]:
    """The host facts main.cf would hold as they are that are not one line of text."""
    return [
        name
        for name in ("ca_bundle", "config_dir", "map_type")
        if host.get(name) is not None and (not isinstance(host[name], str) or _line_breaking(host[name]))
    ]


@FUZZ
@given(data=st.data())
def test_planner_with_generated_role_variables(data):
    names = data.draw(st.sets(st.sampled_from(sorted(SPEC)), max_size=6), label="variables")
    variables = {"postfix_relay_host": "relay.example.org"}
    variables.update({name: data.draw(VARIABLES[name], label=name) for name in sorted(names)})
    host = data.draw(host_facts, label="host")
    plan, message = _refusal(lambda: relay_settings(variables, host=host))
    if message is not None:
        assert not _leaks(message), message
        # Named first: the variable (Ansible's own validation included: test_planner_refusal_starts_with_*) or the
        # host fact (test_planner_host_facts_with_a_line_break_are_refused).
        named = re.match(r"(postfix_[a-z0-9_]+)|host fact ([a-z_]+):", message)
        assert named and (named[1] in SPEC or named[2] in _bad_facts(host)), message
        _count("planner", "refused")
        return
    assert not _leaks(json.dumps(plan, default=str)), plan
    assert not _bad_facts(host), host
    for parameter, value in plan["main_cf"].items():
        assert value is None or isinstance(value, str), (parameter, value)
        assert not (value and _line_breaking(value)), (parameter, value)
    _count("planner", "accepted")
    relays = parse_relayhost_filter(plan["main_cf"]["relayhost"])
    assert plan["main_cf"]["relayhost"] == plan["relayhost"] and relays, plan["relayhost"]
    extra = variables.get("postfix_main_cf")
    for parameter, value in extra.items() if isinstance(extra, dict) else ():
        assert plan["main_cf"].get(parameter) == _main_cf_text(value), (parameter, value, plan["main_cf"])


def _main_cf_text(value) -> str | None:
    """A postfix_main_cf value as main.cf holds it: booleans yes/no, lists joined with ", ", outer white space gone."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_main_cf_text(v) for v in value).strip(" \t\n\v\f\r")
    return str(value).strip(" \t\n\v\f\r")
