# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: relay_check's flow: options, settings (given or read), static rules, live probe.

The role's pre-flight goes through the same ``relay_check`` with ``probe=False`` and the settings it is about
to apply, so the rules live in one place (``_rules``) and never need Postfix on the host in that case.
"""

from __future__ import annotations

import glob
import os
import re
import socket

from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    PASS,
    check,
    describe,
    fail_on_option,
    is_sound,
    summary,
    with_status,
)
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import normalize_value
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import (
    DEFAULT_CONFIG_DIR,
    PostconfRunner,
    read_effective,
    read_nondefault,
)
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    TLS_MODES,
    implied_tls,
    parse_relayhost,
    reject_control_characters,
    relay_tokens,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.info import (
    compare,
    configured_credentials,
    gather,
    map_entries,
    sasl_map_keys,
)
from ansible_collections.smtp.relay.plugins.module_utils._rules import (
    ENCRYPTING_LEVELS,
    RELAY_PARAMETERS,
    VERIFYING_LEVELS,
    Settings,
    permitted_mechanisms,
    static_checks,
    tls_parameters,
)
from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._probe.policy import host_lookup, lookup_resolvers, relay_tls
from ansible_collections.smtp.relay.plugins.module_utils._probe.stages import ProbeSpec, open_connection, probe

SASL_PLUGIN_DIRS = ("/usr/lib/*/sasl2", "/usr/lib/sasl2", "/usr/lib64/sasl2")
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 300.0
DEFAULT_SUBJECT = "smtp.relay test message"
DEFAULT_BODY = "This is a test message sent by smtp.relay.relay_check to prove that this host can relay mail.\n"
_PLUGIN_FILE = re.compile(r"^lib(\w+)\.so")

OPTION_DEFAULTS = {
    "relayhost": None,
    "tls": None,
    "probe": True,
    "ca_file": None,
    "username": None,
    "password": None,
    "auth": None,
    "allow_plaintext_auth": False,
    "timeout": DEFAULT_TIMEOUT,
    "mail_from": None,
    "rcpt_to": None,
    "send_test": False,
    "subject": None,
    "body": None,
    "servername": None,
    "ehlo_name": None,
    "settings": None,
    "sasl_keys": None,
    "config_dir": DEFAULT_CONFIG_DIR,
    "nameservers": None,
    "expect": None,
    "fail_on": None,
}


def _one_line(field: str, value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SmtpRelayError(f"{field} must be a string, got {type(value).__name__}", field=field)
    reject_control_characters(field, value)
    return value.strip() or None


def _sasl_keys(keys) -> list[str]:
    """SASL map keys, each one word such as ``[relay.example.org]:587`` (a blank one is no key at all)."""
    if not isinstance(keys, (list, tuple)):
        raise SmtpRelayError(f"sasl_keys must be a list of map keys, got {type(keys).__name__}", field="sasl_keys")
    checked = [_one_line("sasl_keys", key) for key in keys]
    if None in checked:
        raise SmtpRelayError(
            "sasl_keys: a key is empty; give the keys of the SASL password map, such as [relay.example.org]:587",
            field="sasl_keys",
        )
    return checked


def validate_options(params: dict) -> dict:
    """Refuse bad options before anything is read or contacted; messages name the option, never a password."""
    unknown = set(params) - set(OPTION_DEFAULTS)
    if unknown:
        raise SmtpRelayError(f"unknown option(s): {', '.join(sorted(unknown))}", field=sorted(unknown)[0])
    opts = {**OPTION_DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    for name in ("relayhost", "ca_file", "username", "mail_from", "subject", "servername", "ehlo_name", "config_dir"):
        opts[name] = _one_line(name, opts[name])
    if opts["relayhost"] is not None:
        opts["relayhosts"] = parse_relayhost(opts["relayhost"])
        if not opts["relayhosts"]:
            raise SmtpRelayError(
                "relayhost is empty; write [host]:port, e.g. [relay.example.com]:587", field="relayhost"
            )
    if opts["tls"] is not None and opts["tls"] not in TLS_MODES:
        raise SmtpRelayError(
            f"tls: unknown TLS mode {opts['tls']!r}; accepted: {', '.join(TLS_MODES)}", field="tls", value=opts["tls"]
        )
    try:
        opts["timeout"] = float(opts["timeout"])
    except (TypeError, ValueError):
        raise SmtpRelayError(f"timeout must be a number of seconds, got {opts['timeout']!r}", field="timeout") from None
    if not 0 < opts["timeout"] <= MAX_TIMEOUT:
        raise SmtpRelayError(
            f"timeout must be more than 0 and at most {MAX_TIMEOUT:g} seconds, got {opts['timeout']:g}", field="timeout"
        )
    if opts["password"] is not None and not opts["username"]:
        raise SmtpRelayError("password is given without username; give both or neither", field="password")
    if opts["username"] and opts["password"] is None:
        raise SmtpRelayError("username is given without password; give both or neither", field="username")
    if opts["password"] is not None and (not isinstance(opts["password"], str) or "\n" in opts["password"]):
        raise SmtpRelayError("password must be one line of text (value hidden)", field="password")
    opts["rcpt_to"] = [_one_line("rcpt_to", r) for r in opts["rcpt_to"] or []]
    if opts["rcpt_to"] and not opts["mail_from"]:
        raise SmtpRelayError("rcpt_to needs mail_from (the envelope sender to test with)", field="rcpt_to")
    if opts["send_test"] and not (opts["mail_from"] and opts["rcpt_to"]):
        raise SmtpRelayError("send_test needs mail_from and rcpt_to", field="send_test")
    if opts["settings"] is not None:
        if not isinstance(opts["settings"], dict):
            raise SmtpRelayError("settings must be a dict of main.cf parameter: value", field="settings")
        opts["settings"] = {str(k): normalize_value(str(k), v) for k, v in opts["settings"].items()}
    if opts["sasl_keys"] is not None:
        opts["sasl_keys"] = _sasl_keys(opts["sasl_keys"])
    opts["nameservers"] = _dns.nameserver_addresses(opts["nameservers"])
    opts["fail_on"] = fail_on_option(opts["fail_on"], default=(FAIL,))
    if opts["expect"] is not None and not isinstance(opts["expect"], dict):
        raise SmtpRelayError("expect must be a dict of relay_info field: expected value", field="expect")
    return opts


def sasl_plugins(patterns=SASL_PLUGIN_DIRS) -> list[str] | None:
    """Cyrus SASL plugins installed on the host (plain, login...), None when no plugin directory exists."""
    dirs = [d for pattern in patterns for d in glob.glob(pattern) if os.path.isdir(d)]
    if not dirs:
        return None
    names = {m.group(1) for d in dirs for f in os.listdir(d) if (m := _PLUGIN_FILE.match(f))}
    return sorted(names)


def _host_settings(runner: PostconfRunner, config_dir: str) -> tuple[dict, dict] | None:
    """(effective settings, context) from the host's Postfix, None when Postfix is not there."""
    try:
        rc, _out, _err = runner.run_unchecked("postconf", ["-d", "-h", "mail_version"])
    except SmtpRelayError:
        return None
    if rc != 0:
        return None
    defaults = runner.defaults()
    configured = read_nondefault(runner, config_dir)
    names = sorted(set(RELAY_PARAMETERS) & set(defaults))
    values = {**read_effective(runner, config_dir, names), **configured}
    ctx = {
        "configured": sorted(configured),
        "known_parameters": sorted(defaults),
        "boolean_parameters": sorted(n for n, v in defaults.items() if v in ("yes", "no")),
    }
    return values, ctx


def _known_parameters(runner: PostconfRunner | None) -> dict:
    """Names Postfix knows, when a postconf happens to be there; pre-flight runs may come before Postfix."""
    if runner is None:
        return {}
    try:
        defaults = runner.defaults()
    except (SmtpRelayError, OSError):
        return {}
    return {
        "known_parameters": sorted(defaults),
        "boolean_parameters": sorted(n for n, v in defaults.items() if v in ("yes", "no")),
    }


def settings_from_options(opts: dict) -> dict:
    """Without Postfix: the settings that would give the asked-for probe, so the rules judge those."""
    relays = opts.get("relayhosts") or []
    mode = opts["tls"] or (implied_tls(relays[0]["port"]) if relays else None)
    if mode is None:
        raise SmtpRelayError(
            f"tls: port {relays[0]['port']} does not tell the TLS mode and Postfix is not there to ask; "
            "give tls (starttls, implicit or none)",
            field="tls",
        )
    # The role's own translation: with a CA file the certificate is verified as the role would configure it.
    settings = {"relayhost": opts["relayhost"], **tls_parameters(mode, bool(opts["ca_file"]), opts["ca_file"] or "")}
    if opts["username"]:
        settings.update(smtp_sasl_auth_enable="yes", smtp_sasl_password_maps="(given as options)")
        settings.update(smtp_sasl_security_options="noanonymous", smtp_sasl_tls_security_options="noanonymous")
    return settings


def _gather(opts: dict, runner: PostconfRunner | None) -> tuple[dict, dict, str]:
    """(settings, rule context, where the settings came from: given | host | options)."""
    if opts["settings"] is not None:
        settings = {k: v for k, v in opts["settings"].items() if v is not None}
        if opts["relayhost"]:
            settings["relayhost"] = opts["relayhost"]
        ctx = {**_known_parameters(runner), "configured": sorted(settings)}
        ctx["sasl_keys"] = opts["sasl_keys"]
        return settings, ctx, "given"
    host = _host_settings(runner, opts["config_dir"]) if runner is not None else None
    if host is None:
        if not opts["relayhost"]:
            raise SmtpRelayError(
                "Postfix is not installed on this host (no postconf): give relayhost (and tls), or settings",
                field="relayhost",
            )
        settings = settings_from_options(opts)
        return settings, {"sasl_keys": None, "configured": []}, "options"
    settings, ctx = host
    if opts["relayhost"]:
        settings["relayhost"] = opts["relayhost"]
    s = Settings(settings)
    ctx["sasl_keys"] = (
        opts["sasl_keys"] if opts["sasl_keys"] is not None else sasl_map_keys(s.get("smtp_sasl_password_maps"))
    )
    ctx["sasl_plugins"] = sasl_plugins()
    ctx["file_exists"] = {p: os.path.exists(p) for p in (s.get("smtp_tls_CAfile"), s.get("smtp_tls_CApath")) if p}
    if s.get("smtp_tls_policy_maps"):
        ctx["tls_policies"] = map_entries(s.get("smtp_tls_policy_maps"))
    return settings, ctx, "host"


def _credentials(opts: dict, s: Settings, source: str, hide) -> tuple:
    """(auth, username, password): the options', else, when AUTH is asked for or an envelope is tested on a host
    with SASL on (Postfix authenticates before MAIL FROM), those stored in the host's SASL map for the relayhost.

    Stored ones are read as root and go to ``hide`` (the module's no_log values) before anything else happens.
    """
    username, password = opts["username"], opts["password"]
    auth = opts["auth"]
    if auth is None:
        auth = bool(username) or bool(source == "host" and opts["mail_from"] and s.flag("smtp_sasl_auth_enable"))
    if auth and not username and source == "host":
        found = configured_credentials(s.get("smtp_sasl_password_maps"), s.get("relayhost"))
        username, password = found if found else (None, None)
        if found and hide is not None:
            hide([v for v in found if v])
    return auth, username, password


def _probe_spec(opts: dict, s: Settings, relay: dict, tls: dict, credentials: tuple, *, check_mode: bool) -> ProbeSpec:
    level = tls["level"]
    mode = opts["tls"] or s.tls_mode()
    auth, username, password = credentials
    return ProbeSpec(
        host=relay["host"],
        port=relay["port"],
        tls=mode,
        mx_lookup=relay["mx_lookup"],
        is_ip=relay["is_ip"],
        timeout=opts["timeout"],
        tls_required=mode == "implicit" or level in ENCRYPTING_LEVELS,
        verify=level in VERIFYING_LEVELS,
        ca_file=opts["ca_file"] or s.get("smtp_tls_CAfile") or None,
        ca_path=None if opts["ca_file"] else s.get("smtp_tls_CApath") or None,
        cert_match=tls["cert_match"],
        policy=tls["source"],
        policy_names=tls["policy_names"],
        fingerprints=tls["fingerprints"],
        digest=tls["digest"],
        min_version=tls["min_version"],
        lookup=host_lookup(s),
        servername=opts["servername"] or tls["servername"] or None,
        ehlo_name=opts["ehlo_name"] or s.get("smtp_helo_name") or s.get("myhostname") or socket.getfqdn(),
        username=username if auth else None,
        password=password if auth else None,
        expect_auth=s.flag("smtp_sasl_auth_enable"),
        permitted=lambda offered, tls_active: permitted_mechanisms(s, offered, tls_active),
        mail_from=opts["mail_from"],
        rcpt_to=tuple(opts["rcpt_to"]),
        send_test=opts["send_test"],
        check_mode=check_mode,
        subject=opts["subject"] or DEFAULT_SUBJECT,
        body=opts["body"] or DEFAULT_BODY,
    )


def _expectations(result: dict, opts: dict, runner: PostconfRunner | None) -> dict:
    """relay_info's facts and comparison in the same call (one round trip for smtp.relay.verify)."""
    facts = gather(runner, opts["config_dir"]) if runner is not None else {"postfix_installed": False}
    mismatches = compare(facts, opts["expect"])
    result.update(relay=facts, mismatches=mismatches)
    if mismatches:
        return check("host.expectations", FAIL, "; ".join(mismatches), "static", "converge the host, or fix expect")
    return check("host.expectations", PASS, f"{len(opts['expect'])} expectation(s) met", "static")


def probe_resolver(opts: dict):
    """The probe's DNS: the given nameservers for MX and A/AAAA alike, else as the host's Postfix looks the relay up
    (``opts["host_lookup"]``, smtp_host_lookup: DNS alone, Postfix's default, or the system resolver with /etc/hosts);
    without Postfix's settings, the host's own resolver."""
    return lookup_resolvers(opts.get("host_lookup") or ("native",), opts["nameservers"], opts["timeout"])[0]


def explaining_resolver(opts: dict):
    """The system resolver, when the probe asks DNS alone: it tells a name only in /etc/hosts (None otherwise)."""
    return lookup_resolvers(opts.get("host_lookup") or ("native",), opts["nameservers"], opts["timeout"])[1]


def run(
    params: dict,
    runner: PostconfRunner | None = None,
    *,
    check_mode: bool = False,
    resolver=None,
    connect=None,
    native=None,
    hide=None,
) -> dict:
    """Static rules (and the probe): the full result, whatever the checks say.

    ``resolver``, ``native`` and ``connect`` are the probe's seams (tests pass fakes): by default ``probe_resolver``
    and ``open_connection``. ``hide`` receives the stored credentials the probe reads, before they are used.
    """
    opts = validate_options(params)
    settings, ctx, source = _gather(opts, runner)
    if opts["tls"]:
        ctx["tls"] = opts["tls"]
    ctx["allow_plaintext_auth"] = bool(opts["allow_plaintext_auth"])
    s = Settings(settings)
    try:
        relays = parse_relayhost(s.get("relayhost"))
    except SmtpRelayError:
        relays = []
    result = {"relayhost": s.get("relayhost"), "relayhosts": relays, "settings_source": source, "tls_mode": None}
    probe_checks = []
    if opts["probe"] and relays:
        tls = relay_tls(s, ctx.get("tls_policies"), (relay_tokens(s.get("relayhost")) or [""])[0])
        spec = _probe_spec(opts, s, relays[0], tls, _credentials(opts, s, source, hide), check_mode=check_mode)
        result["tls_mode"] = spec.tls
        if resolver is None:
            # Settings made up from options say nothing of how the host looks names up: its own resolver then.
            opts["host_lookup"] = spec.lookup if source != "options" else ("native",)
            resolver, native = probe_resolver(opts), native or explaining_resolver(opts)
        outcome = probe(spec, resolver, connect or open_connection, native=native)
        probe_checks = outcome.checks
        result.update(tls=outcome.tls, auth=outcome.auth, queue_id=outcome.queue_id, server=outcome.server)
        result["address"] = outcome.address
        if outcome.offered_mechanisms:
            ctx["offered_mechanisms"] = outcome.offered_mechanisms
            ctx["tls_active"] = outcome.auth.get("tls", False)
    else:
        result["tls_mode"] = opts["tls"] or s.tls_mode()
        result.update(tls={}, auth={}, queue_id=None, server=None, address=None)
    checks = static_checks(settings, ctx) + probe_checks
    if opts["expect"] is not None:
        checks.append(_expectations(result, opts, runner))
    # A question nobody answered (DNS silent, a certificate not fetched) is not a success: unknown is not valid.
    result.update(valid=is_sound(checks), checks=checks, msg=summary(checks))
    result["failing"] = [c["id"] for c in with_status(checks, opts["fail_on"])]
    result["fail_on"] = list(opts["fail_on"])
    return result


def relay_check(params: dict, runner: PostconfRunner | None = None, **seams) -> dict:
    """As ``run``; a check with a ``fail_on`` status raises SmtpRelayError with the whole result (for the module)."""
    result = run(params, runner, **seams)
    fail_on = result.pop("fail_on")
    if result.pop("failing"):
        details = {k: v for k, v in result.items() if k != "msg"}
        raise SmtpRelayError(f"{describe(result['checks'], fail_on)} (fail_on: {', '.join(fail_on)})", **details)
    return result
