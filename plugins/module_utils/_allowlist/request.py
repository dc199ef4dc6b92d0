# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: one server's allowlist request, end to end: the options checked (``model``), what
was not given taken from the host (``egress``), the checks (``checks``), the rendering (``render``) and the file.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.smtp.relay.plugins.module_utils import _dns
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.checks import address_checks, dns_checks, evidence
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.egress import detect_egress, relay_addresses
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.model import (
    DEFAULT_TIMEOUT,
    FIELD_NAMES,
    REFUSING_CHECKS,
    fqdn_problem,
    refuse,
    validate_dest,
    validate_params,
    output_params,
    validate_given,
    validate_relay,
    validate_request,
)
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.render import mail_body, render
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.send import (
    ehlo_name,
    preview,
    send,
    validate_sending,
)
from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    WARN,
    check,
    describe,
    is_sound,
    verdict,
    with_status,
)
from ansible_collections.smtp.relay.plugins.module_utils._dns import DNSPYTHON, normalize_name
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._files import write_atomically


def make_resolver(nameservers=None, port: int = 53, timeout: float = DEFAULT_TIMEOUT) -> _dns.Resolver:
    """The run's resolver: the host's own (nsswitch, /etc/hosts first), or dnspython asking the given servers."""
    if nameservers:
        # Refused in the words of this module's options rather than _dns's general ones.
        DNSPYTHON.require("to query the DNS servers given in nameservers")
    return _dns.make_resolver(nameservers, port, timeout=timeout, system=True)


def _relay(opts, postfix) -> tuple[str | None, list]:
    """The relay as given, else Postfix's relayhost: (its text, its parsed entries)."""
    if not opts["relays"] and postfix and postfix.get("relayhost"):
        return postfix["relayhost"], validate_relay(postfix["relayhost"])
    return opts["relay_host"], opts["relays"]


def _fqdn(opts, host, checks) -> str:
    """The FQDN given, else the host's own idea of it (a failed check when it is not qualified)."""
    if opts["fqdn"] is not None:
        return opts["fqdn"]
    detected = host.fqdn()
    problem = fqdn_problem(detected)
    if problem:
        checks.append(check("fqdn.not_qualified", FAIL, f"the host calls itself {detected!r}: {problem}",
                            "input", "set the host name properly or give fqdn", field="fqdn"))  # fmt: skip
        return detected
    return normalize_name(detected)


def gather(opts, host, resolver) -> tuple[dict, list]:
    """The request and its checks, taking from the host what was not given."""
    checks = []
    detecting = not opts["egress_given"] and not (opts["addresses"][4] and opts["addresses"][6])
    postfix = host.postfix_settings() if not opts["relays"] or detecting else None
    relay_value, relays = _relay(opts, postfix)
    towards = relay_addresses(relays, resolver, checks)
    if not relays:
        checks.append(check("relay.unknown", WARN, "no relay_host given and Postfix has no relayhost: egress "
                            "addresses are those of the default route", "egress", "give relay_host",
                            field="relay_host"))  # fmt: skip
    relay_public = opts["relay_public"]
    if relay_public is None and towards:
        relay_public = any(a.is_global for a, _port in towards)

    addresses = {}
    for version in (4, 6):
        explicit = opts["addresses"][version]
        # A published egress list is the whole truth; ipv4 or ipv6 alone says nothing about the other family.
        if explicit or opts["egress_given"]:
            addresses[version] = explicit
            continue
        addresses[version] = detect_egress(
            version, towards, relay_known=bool(relays), postfix=postfix, host=host, checks=checks
        )

    fqdn = _fqdn(opts, host, checks)
    every = addresses[4] + addresses[6]
    if not every:
        checks.append(check("address.none", FAIL, "no egress address found", "address",
                            "give ipv4, ipv6 or egress", field="ipv4"))  # fmt: skip
    for item in every:
        address_checks(item, relay_public, checks)
    if opts["prefer_ipv6"] and not addresses[6]:
        checks.append(check("ipv6.missing", WARN, "the relay prefers IPv6 but the server has no IPv6 egress",
                            "address", "give ipv6 if the server has one", field="ipv6"))  # fmt: skip
    if not any(c["id"] == "fqdn.not_qualified" for c in checks):
        dns_checks(fqdn, every, resolver, checks, shared=opts["shared_egress"])

    request = dict.fromkeys(FIELD_NAMES)
    request.update(
        fqdn=fqdn,
        purpose=opts["purpose"],
        ipv4=[str(a) for a in addresses[4]],
        ipv6=[str(a) for a in addresses[6]],
        team=opts["team"],
        contact=opts["contact"],
        relay=relay_value,
        monitoring=opts["monitoring"],
        shared_egress=True if opts["shared_egress"] else None,
        volume_per_day=opts["volume_per_day"],
        sender_domains=opts["sender_domains"],
    )
    if opts["evidence"]:
        request.update(evidence(opts, host, checks))
    return request, checks


def write_if_changed(dest: str, content: str, check_mode: bool = False) -> tuple[bool, dict]:
    """Replace ``dest`` atomically only when its content differs; returns (changed, diff).

    The file is compared as bytes: whatever it holds (Latin-1, binary) is replaced, never decoded on the way.
    """
    dest = validate_dest(dest)
    if os.path.isdir(dest):
        raise refuse("dest", dest, "expected a file path, this is a directory")
    directory = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(directory):
        raise refuse("dest", dest, f"its directory {directory} does not exist")
    data = content.encode("utf-8")
    try:
        st = os.stat(dest)
        if not stat.S_ISREG(st.st_mode):
            raise refuse("dest", dest, "expected a regular file (or none yet)")
        with open(dest, "rb") as f:
            before = f.read()
    except FileNotFoundError:
        before = None
    except OSError as e:
        raise refuse("dest", dest, f"cannot be read: {e.strerror or e}") from None
    if before == data:
        return False, {}
    diff = {
        # For people: bytes that are not UTF-8 are shown as replacement characters.
        "before": before.decode("utf-8", "replace") if before else "",
        "after": content,
        "before_header": dest if before is not None else f"{dest} (absent)",
        "after_header": dest,
    }
    if check_mode:
        return True, diff
    try:
        write_atomically(dest, data)
    except OSError as e:
        raise refuse("dest", dest, f"cannot be written: {e.strerror or e}") from None
    return True, diff


def _refusal(request, checks, opts) -> SmtpRelayError | None:
    """Why the request may not be rendered: a refusing check (always), else a check with a fail_on status."""
    refused = [c for c in with_status(checks, (FAIL,)) if c["id"] in REFUSING_CHECKS]
    if refused:
        return SmtpRelayError(
            f"allowlist request for {request['fqdn']} refused: "
            + "; ".join(f"{c['id']}: {c['message']}" for c in refused)
            + " (neither report_only nor fail_on renders such a request)",
            changed=False,
            request=request,
            checks=checks,
            valid=False,
            verdict=verdict(checks),
        )
    failing = with_status(checks, opts["fail_on"])
    if failing:
        statuses = ", ".join(sorted({c["status"] for c in failing}))
        return SmtpRelayError(
            f"allowlist request for {request['fqdn']} has checks with status {statuses} "
            f"(fail_on: {', '.join(opts['fail_on'])}): {describe(checks, opts['fail_on'])}; "
            "fix them, or set report_only (or fail_on) to render it anyway",
            changed=False,
            request=request,
            checks=checks,
            valid=is_sound(checks),
            verdict=verdict(checks),
        )
    return None


def failed_warnings(checks) -> list[str]:
    """One line per failed check, for the play's output whatever its verbosity (a task that did not fail shows its
    ``msg`` only at -v)."""
    return [f"allowlist check {c['id']} failed: {c['message']}" for c in with_status(checks, (FAIL,))]


def _build(params, host, resolver) -> tuple[dict, dict, list]:
    """(options, request, checks): gathered and checked on the host, or as given in ``request``, checked as input."""
    if params.get("request") is not None:
        opts = validate_given(params)
        return opts, validate_request(params["request"]), []
    opts = validate_params(params)
    if resolver is None:
        resolver = make_resolver(opts["nameservers"], opts["dns_port"], opts["timeout"])
    request, checks = gather(opts, host, resolver)
    refusal = _refusal(request, checks, opts)
    if refusal is not None:
        raise refusal
    return opts, request, checks


def allowlist_request(
    params, host, resolver=None, check_mode: bool = False, want_diff: bool = False, *, connect=None
) -> dict:
    """Build, check, render and (optionally) write and send one server's allowlist request."""
    # Send options are refused, like the others, before anything is looked up.
    sending = validate_sending(params, output_params(params)["timeout"])
    opts, request, checks = _build(params, host, resolver)
    rendered = render(request, opts["format"], opts["subject"])
    body = mail_body(request)
    result = {
        "changed": False,
        "valid": is_sound(checks),
        "verdict": verdict(checks),
        "request": request,
        "checks": checks,
        "rendered": rendered,
        "mail": {"subject": opts["subject"], "body": body},
        "msg": describe(checks),
        "warnings": failed_warnings(checks),
    }
    if opts["dest"]:
        changed, diff = write_if_changed(opts["dest"], rendered, check_mode)
        result["changed"] = changed
        result["dest"] = opts["dest"]
        if want_diff and changed:
            result["diff"] = diff
    if sending is not None:
        # A mail sent is a change; check mode predicts it and connects to nothing.
        if check_mode:
            result["sent"] = preview(sending)
        else:
            result["sent"] = send(sending, opts["subject"], body, ehlo_name(host), connect)
        result["changed"] = True
    return result
