# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: an allowlist request sent by mail through the collection's one SMTP client
(``_probe.session``), always over TLS whose certificate is verified.

The certificate is checked during the handshake, before the envelope: a relay whose certificate does not verify (an
unknown CA, another name, expired) ends the session with nothing sent, and the password is never sent to it. The
message goes to every recipient or to none: one refused recipient resets the transaction before DATA.
"""

from __future__ import annotations

import email.message
import email.utils
import ssl
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.model import refuse, validate_text
from ansible_collections.smtp.relay.plugins.module_utils._checks import bool_option, int_option
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import (
    AUTH_MECHANISMS,
    AuthRejected,
    Clock,
    ProbeLimit,
    SmtpError,
    SmtpSession,
    UnexpectedReply,
)
from ansible_collections.smtp.relay.plugins.module_utils._probe.stages import open_connection
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import ip_address, is_hostname
from ansible_collections.smtp.relay.plugins.module_utils._sender.names import normalize_domain, split_address

SMTP_TLS = ("starttls", "implicit")
DEFAULT_SMTP_PORTS = {"starttls": 587, "implicit": 465}
MAX_RECIPIENTS = 50
MAILER = "smtp.relay.allowlist_request"


@dataclass(frozen=True)
class Sending:
    """Where and how the request is sent; the password stays out of repr() and of every message."""

    host: str
    port: int
    tls: str
    ca_file: str | None
    username: str | None
    password: str | None = field(repr=False)
    mail_from: str
    mail_to: tuple
    mail_cc: tuple
    timeout: float


def mail_address(name: str, value) -> str:
    """An ASCII mail address with its domain in A-label form, by the sender checks' own address and domain rules."""
    try:
        local, domain = split_address(value)
        domain = normalize_domain(domain)
    except ValueError as e:
        raise refuse(name, value, f"expected a mail address like team@example.org; it {e}") from None
    if not local.isascii():
        raise refuse(name, value, "expected an ASCII local part (the request is sent without SMTPUTF8)")
    return f"{local}@{domain}"


def _addresses(name: str, value, required: bool) -> tuple:
    values = [value] if isinstance(value, str) else value
    if values is None or (isinstance(values, (list, tuple)) and not values):
        if required:
            raise SmtpRelayError(f"send needs {name}: the relay owners' address(es)", field=name)
        return ()
    if not isinstance(values, (list, tuple)) or len(values) > MAX_RECIPIENTS:
        raise refuse(name, value, f"expected a list of at most {MAX_RECIPIENTS} mail addresses")
    return tuple(dict.fromkeys(mail_address(name, v) for v in values))


def _smtp_host(value) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise SmtpRelayError("send needs smtp_host: the mail server to send the request through", field="smtp_host")
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not (ip_address(text) is not None or is_hostname(text)):
        raise refuse("smtp_host", value, "expected a host name or an IP address")
    return text


def _credentials(params) -> tuple[str | None, str | None]:
    username, password = params.get("smtp_username"), params.get("smtp_password")
    if username is None and password is None:
        return None, None
    if username is None or password is None:
        raise SmtpRelayError("smtp_username and smtp_password go together", field="smtp_username")
    if not isinstance(username, str) or not username or not username.isprintable():
        raise refuse("smtp_username", username, "expected one line of printable text")
    # The value is never shown: it is a secret.
    if not isinstance(password, str) or not password or not password.isprintable():
        raise SmtpRelayError("smtp_password is not valid: expected one line of printable text", field="smtp_password")
    return username, password


def validate_sending(params, timeout: float) -> Sending | None:
    """The send options checked, or None when the request is not to be sent."""
    if not bool_option("send", params.get("send"), default=False):
        return None
    tls = "starttls" if params.get("smtp_tls") is None else params["smtp_tls"]
    if tls not in SMTP_TLS:
        raise refuse("smtp_tls", tls, "expected starttls or implicit (a request is never sent in clear)")
    ca_file = params.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not ca_file.strip() or "\x00" in ca_file):
        raise refuse("ca_file", ca_file, "expected the path of a PEM file of CA certificates")
    username, password = _credentials(params)
    if params.get("mail_from") is None:
        raise SmtpRelayError("send needs mail_from: the sender address of the request", field="mail_from")
    return Sending(
        host=_smtp_host(params.get("smtp_host")),
        port=int_option(
            "smtp_port", params.get("smtp_port"), default=DEFAULT_SMTP_PORTS[tls], minimum=1, maximum=65535
        ),
        tls=tls,
        ca_file=ca_file,
        username=username,
        password=password,
        mail_from=mail_address("mail_from", params["mail_from"]),
        mail_to=_addresses("mail_to", params.get("mail_to"), required=True),
        mail_cc=_addresses("mail_cc", params.get("mail_cc"), required=False),
        timeout=timeout,
    )


def message(sending: Sending, subject: str, body: str) -> email.message.EmailMessage:
    msg = email.message.EmailMessage()
    msg["From"] = sending.mail_from
    msg["To"] = ", ".join(sending.mail_to)
    if sending.mail_cc:
        msg["Cc"] = ", ".join(sending.mail_cc)
    msg["Subject"] = validate_text("subject", subject)
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = email.utils.make_msgid(domain=sending.mail_from.rpartition("@")[2])
    msg["X-Mailer"] = MAILER
    msg.set_content(body)
    return msg


def tls_context(sending: Sending) -> ssl.SSLContext:
    """Verifying, with the host name (or IP address) checked: the given CA file, else the system's CAs."""
    try:
        return ssl.create_default_context(cafile=sending.ca_file)
    except (OSError, ssl.SSLError) as e:
        raise refuse("ca_file", sending.ca_file, f"cannot be loaded: {getattr(e, 'strerror', None) or e}") from None


def _expect(reply, codes, what: str):
    if reply.code not in codes:
        raise UnexpectedReply(what, reply)


def _session(sending: Sending, context: ssl.SSLContext, helo: str, session: SmtpSession) -> str:
    """Greeting, EHLO and TLS (verified) on an open session: the TLS version."""
    if sending.tls == "implicit":
        session.start_tls(context, sending.host)
    _expect(session.greeting(), (220,), "the greeting")
    _expect(session.ehlo(helo), (250,), "EHLO")
    if sending.tls == "starttls":
        if not session.has_extn("starttls"):
            raise SmtpError("the server does not offer STARTTLS, and the request is never sent in clear")
        session.starttls(context, sending.host)
        _expect(session.ehlo(helo), (250,), "EHLO after STARTTLS")
    return session.sock.version()


def _login(sending: Sending, session: SmtpSession):
    if sending.username is None:
        return
    offered = session.auth_mechanisms()
    usable = [m for m in AUTH_MECHANISMS if m in offered]
    if not usable:
        raise SmtpError(f"the server offers no AUTH mechanism this client speaks (offered: {' '.join(offered)})")
    session.auth(usable[0], sending.username, sending.password)


def _transaction(sending: Sending, session: SmtpSession, payload: bytes) -> str:
    """MAIL, every RCPT, DATA: the server's final reply text. One refused recipient and nothing is sent."""
    _expect(session.mail(sending.mail_from), (250,), f"MAIL FROM:<{sending.mail_from}>")
    for recipient in (*sending.mail_to, *sending.mail_cc):
        reply = session.rcpt(recipient)
        if reply.code not in (250, 251):
            session.rset()
            raise UnexpectedReply(f"RCPT TO:<{recipient}>", reply)
    reply = session.data(payload)
    _expect(reply, (250,), "the message (DATA)")
    return reply.text


def _failure(sending: Sending, error: Exception) -> SmtpRelayError:
    where = f"{sending.host} port {sending.port} ({sending.tls})"
    if isinstance(error, ssl.SSLCertVerificationError):
        reason = getattr(error, "verify_message", None) or str(error)
        # A name or address the certificate does not hold is smtp_host's to fix; anything else (an unknown CA, an
        # expired certificate) the CA's or the server's.
        name = "mismatch" in reason.lower()
        hint = "give smtp_host as the certificate names the server" if name else "give the server's CA in ca_file"
        return SmtpRelayError(
            f"the request was not sent: the certificate of {where} does not verify: {reason}; {hint}",
            field="smtp_host" if name else "ca_file",
            sent=False,
        )
    if isinstance(error, AuthRejected):
        return SmtpRelayError(f"the request was not sent: {where} rejected the credentials: {error}",
                              field="smtp_username", sent=False)  # fmt: skip
    if isinstance(error, UnexpectedReply):
        return SmtpRelayError(f"the request was not sent: {where}: {error}", field="smtp_host", sent=False)
    kind = type(error).__name__
    return SmtpRelayError(f"the request was not sent: {where}: {kind}: {error}", field="smtp_host", sent=False)


def send(sending: Sending, subject: str, body: str, helo: str, connect=None) -> dict:
    """Send the request; what the server said. Raises SmtpRelayError naming the option to fix when nothing was sent.

    ``connect(host, port, timeout)`` is the connection seam (tests give a socket pair); default ``open_connection``.
    """
    connect = connect or open_connection
    msg = message(sending, subject, body)
    context = tls_context(sending)
    clock = Clock(sending.timeout)
    try:
        sock = connect(sending.host, sending.port, clock.remaining())
    except OSError as e:
        raise _failure(sending, e) from None
    session = SmtpSession(sock, clock)
    try:
        version = _session(sending, context, helo, session)
        _login(sending, session)
        reply = _transaction(sending, session, msg.as_bytes())
    except (OSError, SmtpError, ProbeLimit, ValueError) as e:  # ssl errors are OSErrors
        session.close()
        raise _failure(sending, e) from None
    try:
        session.quit()
    except (OSError, SmtpError, ProbeLimit):
        session.close()  # the message was accepted: a QUIT lost on the way changes nothing
    return {
        "sent": True,
        "smtp_host": sending.host,
        "smtp_port": sending.port,
        "tls": version,
        "from": sending.mail_from,
        "to": list(sending.mail_to),
        "cc": list(sending.mail_cc),
        "message_id": msg["Message-ID"],
        "reply": reply,
    }


def preview(sending: Sending) -> dict:
    """What ``send`` would do, for check mode: nothing is connected to."""
    return {
        "sent": False,
        "smtp_host": sending.host,
        "smtp_port": sending.port,
        "tls": None,
        "from": sending.mail_from,
        "to": list(sending.mail_to),
        "cc": list(sending.mail_cc),
        "message_id": None,
        "reply": None,
    }


def ehlo_name(host) -> str:
    """The name to greet with: the sending host's own FQDN when SMTP can carry it, else ``localhost``."""
    name = host.fqdn()
    return name if isinstance(name, str) and name.isascii() and is_hostname(name) and "." in name else "localhost"
