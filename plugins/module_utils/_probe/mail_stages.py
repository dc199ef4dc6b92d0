# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the probe's AUTH, envelope and message stages, on a session past EHLO (and TLS).

Non-ASCII addresses go out only with SMTPUTF8 (RFC 6531), asked for on MAIL FROM, and fail their check when the
relay does not offer it. The password goes to the session only, never into a check or a message.
"""

from __future__ import annotations

import email.message
import email.utils
import re

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP
from ansible_collections.smtp.relay.plugins.module_utils._probe.record import Run, StageFailed
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import (
    AUTH_MECHANISMS,
    AuthRejected,
    SmtpError,
    SmtpSession,
)

_QUEUE_ID = re.compile(r"queued as\s+<?([^\s>]+)", re.IGNORECASE)


def auth(run: Run, client: SmtpSession):
    spec = run.spec
    offered = client.auth_mechanisms()
    tls_active = client.tls_active
    permitted = list(spec.permitted(offered, tls_active)) if spec.permitted else list(offered)
    run.result.auth.update({"offered": offered, "permitted": permitted, "tls": tls_active, "authenticated": False})
    _mechanisms(run, offered, tls_active)
    if not (spec.username and spec.password is not None):
        run.add("auth.login", "auth.login", SKIP, "no credentials given: AUTH not tried", "auth")
        return
    if not offered:
        run.add("auth.login", "auth.login", SKIP, "skipped: no AUTH offered", "auth")
        return
    usable = [m for m in permitted if m in AUTH_MECHANISMS]
    if not usable:
        message = f"no mechanism Postfix would use among {' '.join(offered)} (see sasl.no_worthy_mechs)"
        run.add("auth.login", "auth.login", SKIP, message, "auth")
        return
    _login(run, client, usable[0])


def _mechanisms(run: Run, offered: list[str], tls_active: bool):
    if offered:
        message = f"the relay offers AUTH {' '.join(offered)}{' after TLS' if tls_active else ' without TLS'}"
        run.add("auth.mechanisms", "auth.mechanisms", PASS, message, "auth", mechanisms=offered)
    elif run.spec.expect_auth or run.spec.username:
        run.add(
            "auth.mechanisms",
            "auth.not_offered",
            FAIL,
            "the relay offers no AUTH on this connection",
            "auth",
            hint="some relays offer AUTH only after STARTTLS, or not at all on this port",
        )
    else:
        message = "the relay offers no AUTH (it admits hosts by address)"
        run.add("auth.mechanisms", "auth.mechanisms", PASS, message, "auth", mechanisms=[])


def _login(run: Run, client: SmtpSession, mechanism: str):
    started = run.begin("auth.login", f"AUTH {mechanism}")
    try:
        reply = client.auth(mechanism, run.spec.username, run.spec.password)
    except AuthRejected as e:
        run.add(
            "auth.login",
            "auth.rejected",
            FAIL,
            f"the relay rejected the credentials with {mechanism}: {e.reply.code} {e.reply.text}",
            "auth",
            hint="check the user name and password (or API key) in the SASL map",
            started=started,
        )
        return
    except (OSError, SmtpError, ValueError) as e:
        # ValueError: a challenge that is not base64 (binascii.Error). A ProbeLimit goes on to probe().
        run.add("auth.login", "auth.error", FAIL, f"AUTH {mechanism} failed: {e}", "auth", started=started)
        return
    run.result.auth.update({"authenticated": True, "mechanism": mechanism})
    message = f"authenticated with {mechanism}: {reply.code} {reply.text}"
    run.add("auth.login", "auth.login", PASS, message, "auth", started=started)


def envelope(run: Run, client: SmtpSession):
    spec = run.spec
    if not spec.mail_from:
        return
    # Non-ASCII addresses need SMTPUTF8 (RFC 6531), asked for on MAIL FROM whichever address needs it.
    utf8 = not all(address.isascii() for address in (spec.mail_from, *spec.rcpt_to))
    options = ["SMTPUTF8"] if utf8 and client.has_extn("smtputf8") else []
    _mail_from(run, client, options)
    if not spec.rcpt_to:
        client.rset()
        return
    started = run.begin("envelope.rcpt_to", "RCPT TO")
    if utf8 and not options:
        _smtputf8_missing(run, "envelope.rcpt_to", [r for r in spec.rcpt_to if not r.isascii()], started)
        client.rset()
        raise StageFailed("a recipient needs SMTPUTF8")
    _rcpt_to(run, client, started)
    if not spec.send_test:
        client.rset()
    elif spec.check_mode:
        client.rset()
        run.add("message.sent", "message.sent", SKIP, "test message not sent in check mode", "message")
    else:
        send(run, client, smtputf8=bool(options))


def _mail_from(run: Run, client: SmtpSession, options: list[str]):
    sender = run.spec.mail_from
    started = run.begin("envelope.mail_from", "MAIL FROM")
    if not sender.isascii() and not options:
        _smtputf8_missing(run, "envelope.mail_from", [sender], started)
        raise StageFailed("the sender needs SMTPUTF8")
    reply = client.mail(sender, options)
    if reply.code != 250:
        hint = _sender_hint(run, reply.code)
        run.add(
            "envelope.mail_from",
            "envelope.sender_rejected",
            FAIL,
            f"MAIL FROM:<{sender}> answered {reply.code} {reply.text}",
            "envelope",
            hint=hint,
            started=started,
        )
        raise StageFailed("sender rejected")
    run.add(
        "envelope.mail_from", "envelope.mail_from", PASS, f"MAIL FROM:<{sender}> accepted", "envelope", started=started
    )


def _sender_hint(run: Run, code: int) -> str:
    if code != 530:
        return "the relay does not accept this sender: use an address in an approved domain"
    spec = run.spec
    if spec.username:
        return "the relay wants AUTH first, and the AUTH above did not succeed (see auth.login)"
    if spec.expect_auth:
        # SASL is on, yet no credentials: the stored ones were not readable (not root) or have no key for the relay.
        return (
            "the relay wants AUTH first: the host's SASL map has no credentials for this relayhost that could be read "
            "(run relay_check as root, become: true; see sasl.key_mismatch), or give username and password"
        )
    return "the relay wants AUTH first: configure credentials (postfix_relay_username / postfix_relay_password)"


def _rcpt_to(run: Run, client: SmtpSession, started: float):
    recipients = run.spec.rcpt_to
    refused = []
    for rcpt in recipients:
        reply = client.rcpt(rcpt)
        if reply.code not in (250, 251):
            refused.append(f"<{rcpt}>: {reply.code} {reply.text}")
    if refused:
        run.add(
            "envelope.rcpt_to",
            "envelope.recipient_rejected",
            FAIL,
            "RCPT TO refused " + "; ".join(refused),
            "envelope",
            hint="the relay does not accept these recipients from this host/sender",
            started=started,
        )
        client.rset()
        raise StageFailed("recipient rejected")
    message = f"RCPT TO {', '.join(recipients)} accepted"
    run.add("envelope.rcpt_to", "envelope.rcpt_to", PASS, message, "envelope", started=started)


def _smtputf8_missing(run: Run, base_id: str, addresses: list[str], started: float):
    run.add(
        base_id,
        "envelope.smtputf8_required",
        FAIL,
        f"{', '.join(addresses)}: not ASCII, and the relay does not offer SMTPUTF8",
        "envelope",
        hint="use an ASCII address (IDNA form for the domain), or a relay that offers SMTPUTF8",
        started=started,
    )


def _test_message(run: Run) -> email.message.EmailMessage:
    spec = run.spec
    msg = email.message.EmailMessage()
    msg["From"] = spec.mail_from
    msg["To"] = ", ".join(spec.rcpt_to)
    msg["Subject"] = spec.subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain=spec.ehlo_name if "." in spec.ehlo_name else None)
    msg["X-Mailer"] = "smtp.relay.relay_check"
    msg.set_content(spec.body)
    return msg


def send(run: Run, client: SmtpSession, smtputf8: bool = False):
    msg = _test_message(run)
    started = run.begin("message.sent", "DATA")
    reply = client.data(msg.as_bytes(policy=msg.policy.clone(utf8=True)) if smtputf8 else msg.as_bytes())
    if reply.code != 250:
        message = f"the relay refused the message: {reply.code} {reply.text}"
        run.add("message.sent", "message.rejected", FAIL, message, "message", started=started)
        return
    match = _QUEUE_ID.search(reply.text)
    run.result.queue_id = match.group(1) if match else reply.text
    run.add(
        "message.sent",
        "message.sent",
        PASS,
        f"the relay accepted the test message: {reply.code} {reply.text}",
        "message",
        started=started,
        queue_id=run.result.queue_id,
        message_id=msg["Message-ID"],
    )
