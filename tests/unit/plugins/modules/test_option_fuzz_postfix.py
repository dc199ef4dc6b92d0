# SPDX-License-Identifier: GPL-3.0-or-later
"""Generated bad input for postconf, postfix_map, postfix_apply, relay_info and relay_check.

Each input goes through the module's main() (Ansible's argument spec first, as users reach it) with fakes behind
the Postfix programs, dpkg-query, systemctl and the probe's DNS and connections. Outcome per input: refused
naming an option (or a dict option's key), failed on a check, or accepted and found in the files it wrote; never
another exception, never a secret in the output. Every input runs against a fresh configuration directory
(main.cf, master.cf, two built maps, a mail name file): on a refusal, in check mode and for the read-only modules,
every file is byte-identical afterwards, none was added or removed, and the fake host's packages and service
were not touched. The bugs these inputs found are kept fixed by test_fuzz_findings.py, one input each.
SMTP_RELAY_FUZZ_EXAMPLES sets the number of inputs per test (default 150); the counts
tried are printed with -s.
"""

from __future__ import annotations

import contextlib
import json
import os
from unittest import mock

import pytest
from ansible.module_utils.common.validation import check_type_dict, check_type_list
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.module_utils._probe import relay_check as _relaycheck
from ansible_collections.smtp.relay.plugins.modules import postconf, postfix_apply, postfix_map, relay_check, relay_info
from tests.unit.plugins.module_utils.smtp_fakes import FakeNetwork
from tests.unit.plugins.modules import fuzz_support as fz
from tests.unit.plugins.modules.test_option_fuzz import FUZZ, odd_list, odd_number, odd_text


@pytest.fixture(scope="module", autouse=True)
def report_counts(tmp_path_factory):
    fz.use_base(tmp_path_factory.getbasetemp())
    yield
    fz.remove_sandboxes()
    print("\ngenerated inputs tried (Postfix modules):", json.dumps(fz.TRIED, sort_keys=True))


def _changed(before: dict, after: dict) -> set[str]:
    return {p for p in {*before, *after} if before.get(p) != after.get(p)}


def _unchanged(top: str, before: dict, host, state: tuple, args) -> None:
    """Every file as it was (none added or removed), the fake host's packages and service untouched."""
    assert not _changed(before, fz.snapshot(top)), (sorted(_changed(before, fz.snapshot(top))), args)
    assert fz.host_state(host) == state, args


@FUZZ
@given(data=st.data())
def test_postconf_module_options(data):
    check_mode = data.draw(st.booleans(), label="check_mode")
    with fz.sandbox() as box, fz.fake_host(box[0]) as host:
        top, conf = box
        options = {"config_dir": fz.config_dir(conf, top), "allow_unknown": fz.boolish}
        args = fz.draw(data, options, {"settings": data.draw(fz.settings, label="settings"), "config_dir": conf})
        before, state = fz.snapshot(top), fz.host_state(host)
        result = fz.run(postconf.main, args, check_mode)
        outcome = fz.count("postconf module", fz.outcome_of(result))
        fz.no_secret(result)
        if outcome == "refused":
            assert fz.names_an_option(result, ["settings", "config_dir", "allow_unknown"]), (result["msg"], args)
        if outcome != "accepted" or check_mode:
            _unchanged(top, before, host, state, args)
        else:
            assert isinstance(result["changed"], bool) and isinstance(result["restart_required"], bool)
            fz.main_cf_round_trips(args["config_dir"], args["settings"])


@FUZZ
@given(data=st.data())
def test_postfix_map_module_options(data):
    check_mode = data.draw(st.booleans(), label="check_mode")
    with fz.sandbox() as box, fz.fake_host(box[0]) as host:
        top, conf = box
        options = {
            "name": fz.map_name,
            "path": st.one_of(odd_text.map(lambda v: fz.inside(top, v)), odd_text.map(lambda v: fz.inside("", v))),
            "type": fz.map_type,
            "secret": fz.boolish,
            "config_dir": fz.config_dir(conf, top),
            "state": fz.state,
        }
        args = fz.draw(data, options, {"name": "sasl_passwd", "config_dir": conf})
        args["entries"] = data.draw(fz.secret_entries if fz.truthy(args.get("secret")) else fz.entries, "entries")
        if "path" in args and data.draw(st.booleans(), label="path instead of name"):
            del args["name"]
        before, state = fz.snapshot(top), fz.host_state(host)
        result = fz.run(postfix_map.main, args, check_mode)
        outcome = fz.count("postfix_map module", fz.outcome_of(result))
        if fz.truthy(args.get("secret")):
            fz.no_secret(result, host_secret=False)
        if outcome == "refused":
            names = ["name", "path", "entries", "type", "secret", "config_dir", "state"]
            assert fz.names_an_option(result, names), (result["msg"], args)
        if outcome != "accepted" or check_mode:
            _unchanged(top, before, host, state, args)
        elif args.get("state", "present") == "present":
            path = args.get("path") or os.path.join(args["config_dir"], args["name"])
            fz.map_round_trips(path, args["entries"], args.get("type"))


# -- postfix_apply ---------------------------------------------------------------------------------------------


def _tables(args: dict) -> list[dict]:
    """The tables as the module got them (Ansible turns a string into a list, "k=v" into a dict)."""
    tables = []
    for option in ("maps", "secret_maps"):
        with contextlib.suppress(TypeError, ValueError):
            for table in check_type_list(args.get(option) or []):
                with contextlib.suppress(TypeError, ValueError):
                    tables.append(check_type_dict(table))
    return tables


def _tables_round_trip(args: dict) -> None:
    tables = _tables(args)
    names = [t["name"] for t in tables]
    assert len(set(names)) == len(names), "a table given twice is refused"
    for table in tables:
        path = os.path.join(args["config_dir"], table["name"])
        if (table.get("state") or "present") == "absent":
            assert not os.path.exists(path), table
        else:
            fz.map_round_trips(path, table.get("entries") or {}, args.get("map_type"))


# Mostly a main.cf that passes, so that the steps after it (and the refusals of later steps) are reached.
MAIN_CF = st.one_of(
    st.sampled_from([{}, {"relayhost": "[relay.example.org]:2525"}, {"myorigin": "example.net", "biff": False}]),
    st.sampled_from([{"relayhost": "a\nb"}, {"relay_api_key": fz.SECRET_HEAD + fz.SECRET_TAIL}]),
    fz.settings,
)


def _table(values):
    return st.fixed_dictionaries(
        {}, optional={"name": st.one_of(fz.map_name, fz.map_name, odd_number), "entries": values, "state": fz.state}
    )


@FUZZ
@given(data=st.data())
def test_postfix_apply_module_options(data):
    check_mode = data.draw(st.booleans(), label="check_mode")
    with fz.sandbox() as box, fz.fake_host(box[0]) as host:
        top, conf = box
        options = {
            "maps": st.one_of(
                st.lists(_table(fz.entries), max_size=3), st.lists(_table(fz.entries), max_size=3), odd_list
            ),
            "secret_maps": st.lists(_table(st.one_of(fz.secret_entries, fz.secret_entries, odd_list)), max_size=2),
            "map_type": fz.map_type,
            "mailname_file": odd_text.map(lambda v: fz.inside(top, v)),
            "mailname": st.one_of(st.sampled_from(["example.org", "mail.example.org"]), odd_text),
            "service": st.one_of(st.sampled_from(["postfix", ""]), odd_text),
            "packages": st.one_of(st.sampled_from([["postfix"], [], ["postfix", "exim4"]]), odd_list),
            "config_dir": fz.config_dir(conf, top),
        }
        args = fz.draw(data, options, {"main_cf": data.draw(MAIN_CF, label="main_cf"), "config_dir": conf})
        before, state = fz.snapshot(top), fz.host_state(host)
        result = fz.run(postfix_apply.main, args, check_mode)
        outcome = fz.count("postfix_apply module", fz.outcome_of(result))
        fz.no_secret(result, host_secret=False)
        names = [
            "main_cf",
            "settings",
            "maps",
            "secret_maps",
            "entries",
            "name",
            "map_type",
            "type",
            "mailname_file",
            "mailname",
            "service",
            "packages",
            "config_dir",
            "state",
        ]
        if outcome == "refused":
            assert fz.names_an_option(result, names), (result["msg"], args)
        if outcome == "refused" or check_mode or result.get("missing_packages"):
            _unchanged(top, before, host, state, args)
        elif outcome == "accepted":
            fz.main_cf_round_trips(args["config_dir"], args["main_cf"])
            _tables_round_trip(args)
            if args.get("mailname_file") and args.get("mailname") is not None:
                with open(args["mailname_file"], encoding="utf-8", errors="surrogateescape", newline="") as handle:
                    written = handle.read()
                assert written == str(args["mailname"]).rstrip("\n") + "\n"
                assert written[:-1].isprintable(), "the mail name is one line of printable text"


# -- read-only modules -----------------------------------------------------------------------------------------

FACTS = [
    "relayhost",
    "tls_security_level",
    "sasl_enabled",
    "mode",
    "queue.deferred",
    "myorigin",
    "maps",
    "postfix_installed",
    "service_running",
    "sasl_key_matches",
    "tls_wrappermode",
    "relayhosts",
]
expect_dict = st.dictionaries(st.one_of(st.sampled_from(FACTS), odd_text), fz.plain_value, max_size=3)
expect = st.one_of(expect_dict, expect_dict, odd_text)


@FUZZ
@given(data=st.data())
def test_relay_info_module_options(data):
    with fz.sandbox() as box, fz.fake_host(box[0]) as host:
        top, conf = box
        args = fz.draw(data, {"config_dir": fz.config_dir(conf, top), "expect": expect}, {"config_dir": conf})
        before, state = fz.snapshot(top), fz.host_state(host)
        result = fz.run(relay_info.main, args, False)
        outcome = fz.count("relay_info module", fz.outcome_of(result, "mismatches"))
        _unchanged(top, before, host, state, args)
        fz.no_secret(result)
        assert result.get("changed", False) is False
        if outcome == "refused":
            assert fz.names_an_option(result, ["config_dir", "expect"]), (result["msg"], args)


def _quick(timeout):
    """A valid timeout above 2 s becomes 2 s: the fake relay answers at once, and a stage that waits in vain (a
    port that drops packets) would make the run slow, not more thorough."""
    try:
        return 2.0 if 2 < float(timeout) <= 300 else timeout
    except (TypeError, ValueError, OverflowError):
        return timeout


RELAYHOSTS = [
    "[relay.example.org]:587",
    "[relay.example.org]:25",
    "[relay.example.org]:465",
    "relay.example.org",
    "[192.0.2.25]:2525",
    "[ipv6:2001:db8::25]:587",
    "[nowhere.example.org]:587",
]
CHECK_OPTIONS = {
    "relayhost": st.one_of(st.sampled_from(RELAYHOSTS), odd_text),
    "tls": st.one_of(st.sampled_from(["starttls", "implicit", "none"]), odd_text),
    "probe": fz.boolish,
    "ca_file": odd_text,
    "username": st.one_of(st.sampled_from(["u", "apikey"]), odd_text),
    "password": fz.secret,
    "auth": fz.boolish,
    "allow_plaintext_auth": fz.boolish,
    "timeout": st.one_of(st.sampled_from([0.5, 1, "2", 0, -1, 301, "abc", "nan", "inf", 1e-300]), odd_number),
    "mail_from": st.one_of(st.sampled_from(["a@example.org", "<>", "é@example.org"]), odd_text),
    "rcpt_to": st.one_of(st.sampled_from([["b@example.org"], []]), odd_list),
    "send_test": fz.boolish,
    "subject": odd_text,
    "body": odd_text,
    "servername": st.one_of(st.sampled_from(["hostname", "nexthop", "relay.example.org"]), odd_text),
    "ehlo_name": odd_text,
    "settings": fz.settings,
    "sasl_keys": odd_list,
    "nameservers": st.one_of(st.sampled_from([["192.0.2.53"], ["::1"]]), odd_list),
    "expect": expect,
    "fail_on": st.one_of(st.lists(st.sampled_from(["fail", "warn", "unknown"]), max_size=3), odd_list),
}


@FUZZ
@given(data=st.data())
def test_relay_check_module_options(data):
    check_mode = data.draw(st.booleans(), label="check_mode")
    network = FakeNetwork(
        addresses={"relay.example.org": ["192.0.2.25"]},
        ports={25: "refused", 465: "timeout", 2526: "unreachable"},
        relay_kwargs={"users": {"u": "pw"}},
    )
    with (
        fz.sandbox() as box,
        fz.fake_host(box[0]) as host,
        mock.patch.object(_relaycheck, "probe_resolver", lambda opts: network.resolver),
        mock.patch.object(_relaycheck, "open_connection", network.connect),
    ):
        top, conf = box
        options = {**CHECK_OPTIONS, "ca_file": odd_text.map(lambda v: fz.inside(top, v))}
        options["config_dir"] = fz.config_dir(conf, top)
        args = fz.draw(data, options, {"config_dir": conf}, max_size=6)
        if "timeout" in args:
            args["timeout"] = _quick(args["timeout"])
        before, state = fz.snapshot(top), fz.host_state(host)
        result = fz.run(relay_check.main, args, check_mode)
        outcome = fz.count("relay_check module", fz.outcome_of(result, "checks"))
        _unchanged(top, before, host, state, args)
        fz.no_secret(result)
        assert result.get("changed", False) is False
        if outcome == "refused":
            assert fz.names_an_option(result, [*CHECK_OPTIONS, "config_dir", "port"]), (result["msg"], args)
