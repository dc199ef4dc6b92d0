# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: mail_test's engine: a marked test mail through Postfix itself, and its result.

The mail is submitted with Postfix's ``sendmail``, so it takes the path real mail takes (canonical rewriting, the
stored SASL credentials, the TLS policy); mail_follow.py follows it to the relay. The sender-domain checks are
sender_check's engine, run over the sender Postfix actually used.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.header import Header

from ansible_collections.smtp.relay.plugins.module_utils._checks import (
    FAIL,
    PASS,
    SKIP,
    UNKNOWN,
    WARN,
    bool_option,
    check,
    describe,
    fail_on_option,
    int_option,
    number_option,
    shown,
    with_status,
)
from ansible_collections.smtp.relay.plugins.module_utils._dns import nameserver_addresses
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.mail_follow import (
    MARKER_HEADER,
    NO_LOG_HINT,
    STAGE,
    Follower,
    Outcome,
    read_queue,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maillog import open_log
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import (
    DEFAULT_CONFIG_DIR,
    PostconfRunner,
    postfix_present,
    read_effective,
)
from ansible_collections.smtp.relay.plugins.module_utils._sender.engine import check_senders
from ansible_collections.smtp.relay.plugins.module_utils._sender.names import normalize_domain, split_address

DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 3600.0
MAX_SUBJECT = 200


@dataclass
class Options:
    rcpt_to: str
    mail_from: str | None
    subject: str | None
    timeout: float
    sender_check: bool
    nameservers: list[str]
    dns_port: int
    fail_on: tuple
    config_dir: str


@dataclass
class Env:
    """The seams to time, files and the sender checks (tests replace them)."""

    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    exists: Callable[[str], bool] = os.path.exists
    new_id: Callable[[], str] = lambda: uuid.uuid4().hex
    senders: Callable[[dict], dict] = check_senders


def _address(params: dict, name: str, required: bool = False) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise SmtpRelayError(f"{name} is required: the address the test mail goes to", field=name)
        return None
    try:
        local, domain = split_address(value)
        return f"{local}@{normalize_domain(domain)}"
    except ValueError as exc:
        raise SmtpRelayError(f"{name}: {shown(value)} {exc}; accepted: one address, local@domain", field=name) from None


def _subject(value) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.isprintable() or len(value) > MAX_SUBJECT:
        raise SmtpRelayError(
            f"subject: {shown(value)} is not valid; accepted: one line of printable text, at most {MAX_SUBJECT} "
            "characters",
            field="subject",
        )
    return value


def options_from_params(params: dict) -> Options:
    """Every option checked, and refused by name, before anything is sent."""
    return Options(
        rcpt_to=_address(params, "rcpt_to", required=True),
        mail_from=_address(params, "mail_from"),
        subject=_subject(params.get("subject")),
        timeout=number_option("timeout", params.get("timeout"), default=DEFAULT_TIMEOUT, maximum=MAX_TIMEOUT),
        sender_check=bool_option("sender_check", params.get("sender_check"), default=False),
        nameservers=nameserver_addresses(params.get("nameservers")),
        dns_port=int_option("dns_port", params.get("dns_port"), default=53, minimum=1, maximum=65535),
        fail_on=fail_on_option(params.get("fail_on")),
        config_dir=params.get("config_dir") or DEFAULT_CONFIG_DIR,
    )


def compose(opts: Options, marker: str, message_id: str, hostname: str) -> str:
    """The test mail: the marker header to find it, Auto-Submitted so that no autoresponder answers it."""
    subject = opts.subject or f"smtp.relay mail test from {hostname}"
    if not subject.isascii():
        subject = Header(subject, "utf-8").encode()
    lines = [f"To: <{opts.rcpt_to}>"]
    if opts.mail_from:
        lines.append(f"From: <{opts.mail_from}>")
    lines += [
        f"Subject: {subject}",
        f"Message-ID: <{message_id}>",
        f"{MARKER_HEADER}: {marker}",
        "Auto-Submitted: auto-generated",
        "",
        f"A test mail from {hostname}, sent by smtp.relay.mail_test through Postfix. Marker: {marker}.",
        "It needs no answer and can be deleted.",
    ]
    return "\n".join(lines) + "\n"


def sender_checks(opts: Options, sender: str | None, relayhost: str, env: Env) -> list[dict]:
    """sender_check's engine over the domain of the sender Postfix used (after its rewriting)."""
    if not sender or "@" not in sender:
        return [
            check(
                "sender.checks",
                SKIP,
                f"no sender domain to check ({'the sender is ' + repr(sender) if sender else 'the sender is unknown'})",
                "sender",
                hint="give mail_from to check a given sender",
            )
        ]
    params = {
        "addresses": [sender],
        "relay_host": relayhost or None,
        "nameservers": opts.nameservers,
        "dns_port": opts.dns_port,
        "fail_on": [],
    }
    try:
        result = env.senders(params)
    except SmtpRelayError as exc:
        return [check("sender.checks", UNKNOWN, f"{sender}: the sender checks did not run: {exc.msg}", "sender")]
    found = [c for domain in result["domains"].values() for c in domain["checks"]]
    return found + result["relay"]["checks"]


def _service_check(runner: PostconfRunner, config_dir: str) -> dict:
    try:
        rc, _out, _err = runner.run_unchecked("postfix", ["-c", config_dir, "status"])
    except SmtpRelayError as exc:
        rc, _err = None, exc.msg
    if rc == 0:
        return check("mail.service", PASS, "Postfix is running", STAGE)
    return check(
        "mail.service",
        FAIL,
        "Postfix is not running: a test mail would wait in the queue",
        STAGE,
        hint="start it (systemctl start postfix) and run the test again",
    )


def _log_check(log) -> dict:
    if log is not None:
        return check("mail.log", PASS, f"mail log: {log.source}", STAGE)
    return check("mail.log", WARN, "no mail log found: sent and bounced cannot be told apart", STAGE, hint=NO_LOG_HINT)


def _submit(runner, opts: Options, text: str) -> dict:
    args = ["-C", opts.config_dir, "-i", "-t"] + (["-f", opts.mail_from] if opts.mail_from else [])
    try:
        rc, out, err = runner.run_input("sendmail", args, text)
    except SmtpRelayError as exc:
        rc, out, err = None, "", exc.msg
    if rc == 0:
        return check("mail.submit", PASS, f"submitted with sendmail {' '.join(args[2:])}", STAGE)
    detail = " ".join((err or out).split())[:300] or f"rc={rc}"
    return check("mail.submit", FAIL, f"sendmail refused the test mail: {detail}", STAGE)


def _send_and_follow(runner, opts: Options, settings: dict, env: Env, ids: dict) -> tuple[Outcome, list[dict]]:
    checks = [_service_check(runner, opts.config_dir)]
    if checks[0]["status"] != PASS:
        return Outcome(UNKNOWN, check("mail.delivery", SKIP, "no test mail was sent", STAGE)), checks
    log = open_log(runner, settings.get("maillog_file", ""), env.wall(), env.exists)
    checks.append(_log_check(log))
    before = {e.get("queue_id") for e in read_queue(runner, opts.config_dir)}
    started = env.clock()
    checks.append(_submit(runner, opts, compose(opts, ids["marker"], ids["message_id"], ids["hostname"])))
    if checks[-1]["status"] != PASS:
        return Outcome(UNKNOWN, check("mail.delivery", SKIP, "no test mail was sent", STAGE)), checks
    follower = Follower(runner, opts, log=log, before=before, ids=ids, env=env)
    return follower.follow(started), checks


def mail_test(runner: PostconfRunner, params: dict, check_mode: bool = False, env: Env | None = None) -> dict:
    """The mail_test result (see the module's RETURN); raises SmtpRelayError with it when a check is in fail_on."""
    env = env or Env()
    opts = options_from_params(params)
    if not postfix_present(runner):
        raise SmtpRelayError("Postfix is not installed on this host: no test mail can be sent", changed=False)
    settings = read_effective(runner, opts.config_dir, ["relayhost", "maillog_file", "myhostname"])
    marker = env.new_id()
    hostname = settings.get("myhostname") or "localhost"
    ids = {"marker": marker, "message_id": f"smtp-relay-test.{marker}@{hostname}", "hostname": hostname}
    if check_mode:
        outcome = Outcome("skipped", check("mail.delivery", SKIP, "check mode: no test mail was sent", STAGE))
        checks: list[dict] = []
    else:
        outcome, checks = _send_and_follow(runner, opts, settings, env, ids)
    submitted = any(c["id"] == "mail.submit" and c["status"] == PASS for c in checks)
    checks.append(outcome.check)
    sender = outcome.sender or opts.mail_from
    if opts.sender_check:
        checks += sender_checks(opts, sender, settings.get("relayhost", ""), env)
    result = {
        "changed": submitted,
        "status": outcome.status,
        "queue_id": outcome.queue_id,
        "marker": marker if submitted else None,
        "message_id": ids["message_id"] if submitted else None,
        "sender": sender,
        "rcpt_to": opts.rcpt_to,
        "relay": outcome.relay,
        "reason": outcome.reason,
        "dsn": outcome.dsn,
        "elapsed": outcome.elapsed,
        "checks": checks,
    }
    summary = f"test mail to {opts.rcpt_to}: {outcome.status}" + (f" ({outcome.reason})" if outcome.reason else "")
    failing = with_status(checks, opts.fail_on)
    if failing:
        raise SmtpRelayError(f"{summary}; {describe(checks)}", **result)
    return {**result, "msg": f"{summary}; {describe(checks)}"}
