# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the probe's TLS and certificate stages (tls.handshake, cert.chain/name/expiry/sni).

TLS starts in one place, ``_start_tls``: ``SmtpSession.starttls`` (which refuses anything but a 220) or, for
implicit TLS, the handshake before the greeting. A certificate that does not verify is reported, then the probe
reconnects without verification to report what else there is to know, as Postfix at a lower level would see it.
"""

from __future__ import annotations

import hashlib
import ssl

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, PASS, SKIP, UNKNOWN, WARN
from ansible_collections.smtp.relay.plugins.module_utils._probe.certs import (
    certificate_summary,
    expected_names,
    names_match,
)
from ansible_collections.smtp.relay.plugins.module_utils._probe.record import ProbeSpec, Run, StageFailed
from ansible_collections.smtp.relay.plugins.module_utils._probe.session import (
    ProbeLimit,
    SmtpError,
    SmtpSession,
    StageTimeout,
    UnexpectedReply,
)

EXPIRY_WARN_DAYS = 14
_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}


def contexts(spec: ProbeSpec) -> tuple[ssl.SSLContext | None, ssl.SSLContext]:
    """(verifying context, when a CA is given, else None; non-verifying context). Names are matched by the probe."""
    loose = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    loose.check_hostname = False
    loose.verify_mode = ssl.CERT_NONE
    strict = None
    if spec.ca_file or spec.ca_path:
        strict = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        strict.check_hostname = False
        strict.load_verify_locations(cafile=spec.ca_file or None, capath=spec.ca_path or None)
    # The oldest protocol Postfix will offer (smtp_tls_mandatory_protocols, or the relay's policy entry).
    oldest = _VERSIONS.get(spec.min_version or "")
    for context in (strict, loose):
        if context is not None and oldest is not None:
            context.minimum_version = oldest
    return strict, loose


def ca_unreadable(run: Run, error: Exception) -> StageFailed:
    """Record that the CA cannot be loaded; the error to raise."""
    spec = run.spec
    run.add(
        "tls.handshake",
        "tls.ca_unreadable",
        FAIL,
        f"cannot load the CA ({spec.ca_file or spec.ca_path}): {error}",
        "tls",
        hint="check ca_file / smtp_tls_CAfile",
    )
    return StageFailed("the CA cannot be loaded")


def secure(run: Run, client: SmtpSession, tls_contexts) -> SmtpSession:
    """TLS on the session (implicit: before the greeting; STARTTLS: after EHLO), recorded with the certificate.

    Returns the session to go on with: this one, or a new unverified one after a failed verification, or this one
    still in clear when the relay offers no STARTTLS and Postfix would send in clear too.
    """
    strict, loose = tls_contexts
    if run.spec.tls != "starttls":
        started = run.begin("tls.handshake", "the TLS handshake")
    else:
        started = run.begin("tls.handshake", "STARTTLS")
        if not client.has_extn("starttls"):
            _starttls_not_offered(run, started)
            return client
    return _handshake(run, client, strict or loose, loose, started)


def _starttls_not_offered(run: Run, started: float):
    status = FAIL if run.spec.tls_required else WARN
    run.add(
        "tls.handshake",
        "tls.starttls_not_offered",
        status,
        "the relay does not offer STARTTLS",
        "tls",
        hint="at smtp_tls_security_level = may Postfix would send in clear; use a port with TLS",
        started=started,
    )
    if status == FAIL:
        raise StageFailed("no STARTTLS")
    run.skip(("cert",), "skipped: no TLS")


def _start_tls(run: Run, client: SmtpSession, context: ssl.SSLContext, sni: str | None):
    """The one way TLS starts on a session: STARTTLS (its 220 checked), or the handshake of implicit TLS."""
    if run.spec.tls == "starttls":
        client.starttls(context, sni)
    else:
        client.start_tls(context, sni)


def _handshake(run: Run, client: SmtpSession, context, loose, started: float, *, reopened=False) -> SmtpSession:
    try:
        _start_tls(run, client, context, run.sni())
    except UnexpectedReply as e:  # STARTTLS refused: no handshake was started
        client.close()
        if reopened:
            message, check_id = f"reconnecting without verification failed: {e}", "tls.handshake_failed"
        else:
            message, check_id = f"STARTTLS answered {e.reply.code} {e.reply.text}", "tls.starttls_refused"
        run.add("tls.handshake", check_id, FAIL, message, "tls", started=started)
        raise StageFailed("STARTTLS refused") from None
    except ssl.SSLCertVerificationError as e:
        client.close()
        if "tls.handshake" not in run.reported:
            _record_untrusted(run, e)
        return _reopen_unverified(run, loose)
    except StageTimeout:
        client.close()
        raise  # tls.timeout, from probe()
    except (ssl.SSLError, OSError, ValueError) as e:
        client.close()
        raise _handshake_failed(run, str(e), started) from None
    if "tls.handshake" not in run.reported:
        try:
            _record_tls(run, client, context is not loose, started, loose)
        except BaseException:
            client.close()  # the caller may hold another session (after a reconnection): this one ends here
            raise
    return client


def _handshake_failed(run: Run, text: str, started: float) -> StageFailed:
    """Record the failed handshake; the error to raise."""
    if "WRONG_VERSION_NUMBER" in text.upper() or "wrong version number" in text:
        hint = "the port does not speak TLS right away: use tls=starttls / smtp_tls_wrappermode = no"
    else:
        hint = "compare smtp_tls_mandatory_protocols and ciphers with what the relay supports"
    run.add(
        "tls.handshake",
        "tls.handshake_failed",
        FAIL,
        f"TLS handshake failed: {text}",
        "tls",
        hint=hint,
        started=started,
    )
    return StageFailed("TLS handshake failed")


def _record_untrusted(run: Run, error: ssl.SSLCertVerificationError):
    reason = getattr(error, "verify_message", None) or str(error)
    run.result.tls["chain_error"] = reason
    run.add(
        "cert.chain",
        "cert.untrusted",
        run.severity(),
        f"the certificate does not verify against the CA: {reason}",
        "cert",
        hint="give the relay's CA in smtp_tls_CAfile / ca_file, or fix the relay's chain",
    )


def _reconnect(run: Run) -> SmtpSession:
    """A new session with the relay, ready for TLS: for STARTTLS, past the greeting and EHLO.

    Unrecorded (the first session reported those stages); each step is a stage on the clock. Raises OSError,
    SmtpError or ProbeLimit.
    """
    client = SmtpSession(run.connect_again(), run.clock)
    if run.spec.tls != "starttls":
        return client
    try:
        reply = client.greeting()
        if reply.code != 220:
            raise UnexpectedReply("the greeting", reply)
        reply = client.ehlo(run.spec.ehlo_name)
        if reply.code != 250:
            raise UnexpectedReply("EHLO", reply)
    except BaseException:
        client.close()
        raise
    return client


def _reopen_unverified(run: Run, loose) -> SmtpSession:
    """After a failed verification, go on unverified to report what else there is to know."""
    started = run.begin("tls.handshake", "the TLS handshake")
    try:
        client = _reconnect(run)
    except (OSError, SmtpError, ProbeLimit) as e:
        run.add("tls.handshake", "tls.handshake_failed", FAIL, f"reconnecting without verification failed: {e}", "tls")
        raise StageFailed("TLS failed") from None
    return _handshake(run, client, loose, loose, started, reopened=True)


def _record_tls(run: Run, client: SmtpSession, verified: bool, started: float, loose):
    sock = client.sock
    cipher = sock.cipher()
    sni = run.sni()
    run.result.tls.update({"version": sock.version(), "cipher": cipher[0] if cipher else None, "sni": sni})
    run.add(
        "tls.handshake",
        "tls.handshake",
        PASS,
        f"{sock.version()} with {cipher[0] if cipher else '?'}"
        f" ({'SNI ' + sni if sni else 'no SNI, like Postfix by default'})",
        "tls",
        started=started,
        version=sock.version(),
    )
    der = sock.getpeercert(binary_form=True)
    if not der:
        run.add("cert.chain", "cert.missing", FAIL, "the relay presented no certificate", "cert")
        return
    cert = certificate_summary(der, run.now())
    run.result.tls["certificate"] = cert
    _cert_chain(run, cert, verified)
    _cert_name(run, cert, der)
    _cert_expiry(run, cert)
    _cert_sni(run, der, cert, loose)


def _cert_chain(run: Run, cert: dict, verified: bool):
    if verified:
        run.result.tls["chain_verified"] = True
        run.add(
            "cert.chain", "cert.chain", PASS, f"the certificate for {cert['subject']} verifies against the CA", "cert"
        )
    elif "cert.chain" not in run.reported:
        run.result.tls["chain_verified"] = None
        run.add(
            "cert.chain",
            "cert.chain",
            UNKNOWN if run.spec.verify else SKIP,
            "no CA given: the chain was not checked (Postfix does not check it below smtp_tls_security_level = verify)",
            "cert",
            hint="give ca_file to check it",
        )
    else:
        run.result.tls["chain_verified"] = False


def _wanted(run: Run) -> list[str]:
    return expected_names(run.spec.cert_match, run.server(), run.spec.host)


def _cert_fingerprint(run: Run, der: bytes):
    """Level fingerprint: Postfix checks neither chain nor name, only that the certificate is one of the pinned."""
    spec = run.spec
    digest = hashlib.new(spec.digest, der).hexdigest()
    shown = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2)).upper()
    where = spec.policy or "smtp_tls_fingerprint_cert_match"
    if digest in spec.fingerprints:
        run.add(
            "cert.name", "cert.name", PASS, f"the certificate's {spec.digest} fingerprint is pinned ({where})", "cert"
        )
        return
    run.add(
        "cert.name",
        "cert.fingerprint_mismatch",
        FAIL,
        f"the certificate's {spec.digest} fingerprint {shown} is not among the pinned ones ({where}): Postfix refuses "
        "the relay",
        "cert",
        hint="pin the relay's current certificate (openssl x509 -noout -fingerprint -sha256), or fix the relay's",
        fingerprint=shown,
    )


def _cert_name(run: Run, cert: dict, der: bytes = b""):
    if run.spec.fingerprints:
        _cert_fingerprint(run, der)
        return
    wanted = _wanted(run)
    matched = names_match(cert, wanted)
    presented = ", ".join(cert["dns_names"] + cert["ip_addresses"]) or cert.get("subject") or "nothing"
    if matched:
        run.add("cert.name", "cert.name", PASS, f"the certificate names {matched} (presents {presented})", "cert")
        return
    policy = run.spec.policy
    if run.spec.policy_names and run.spec.verify:
        # The name was asked for explicitly (postfix_relay_tls_name): the certificate is not the one expected.
        check_id, where = "cert.policy_name_mismatch", f"as the TLS policy expects ({policy})"
        hint = f"expect a name the certificate holds ({presented}): postfix_relay_tls_name, match= of the entry"
    else:
        check_id, where = "cert.name_mismatch", "as Postfix expects"
        hint = "use the relay name its certificate holds in relayhost, or fix the relay's certificate"
    run.add(
        "cert.name",
        check_id,
        run.severity(),
        f"the certificate names {presented}, not {' or '.join(wanted)} {where}",
        "cert",
        hint=hint,
        expected=wanted,
        presented=cert["dns_names"] + cert["ip_addresses"],
    )


def _cert_expiry(run: Run, cert: dict):
    days = cert["days_left"]
    renew = "the relay's operator must renew it"
    if cert["expired"]:
        message = f"the certificate expired on {cert['not_after']}"
        run.add("cert.expiry", "cert.expired", run.severity(), message, "cert", hint=renew, days_left=days)
    elif days < EXPIRY_WARN_DAYS:
        message = f"the certificate expires in {days} days"
        run.add("cert.expiry", "cert.expires_soon", WARN, message, "cert", hint=renew, days_left=days)
    else:
        message = f"the certificate is valid for {days} more days"
        run.add("cert.expiry", "cert.expiry", PASS, message, "cert", days_left=days)


def _fetch_certificate(run: Run, sni: str | None, loose) -> bytes | None:
    client = _reconnect(run)
    try:
        _start_tls(run, client, loose, sni)
        return client.sock.getpeercert(binary_form=True)
    finally:
        client.close()


def _cert_sni(run: Run, der: bytes, cert: dict, loose):
    """Postfix sends SNI only when smtp_tls_servername is set: compare with what an SNI client gets."""
    server = run.server()
    if run.spec.is_ip:
        run.add("cert.sni", "cert.sni", SKIP, "the relay is an IP address: no SNI to compare", "cert")
        return
    other_sni = None if run.sni() else server
    started = run.begin("cert.sni", "fetching the certificate a second time")
    try:
        other = _fetch_certificate(run, other_sni, loose)
    except (OSError, SmtpError, ProbeLimit) as e:
        other, why = None, str(e)
    else:
        why = "the relay presented none"
    if not other:
        message = f"could not fetch the certificate a second time: {why}"
        run.add("cert.sni", "cert.sni", UNKNOWN, message, "cert", started=started)
        return
    label = "without SNI" if other_sni is None else f"with SNI {other_sni}"
    if other == der:
        run.add(
            "cert.sni", "cert.sni", PASS, f"the relay presents the same certificate {label}", "cert", started=started
        )
        return
    other_cert = certificate_summary(other, run.now())
    run.result.tls["certificate_" + ("without_sni" if other_sni is None else "with_sni")] = other_cert
    wanted = _wanted(run)
    if not run.sni() and names_match(other_cert, wanted) and not names_match(cert, wanted):
        run.add(
            "cert.sni",
            "cert.sni_differs",
            run.severity(),
            f"only with SNI {server} does the relay present a certificate for {server}; "
            "Postfix sends no SNI by default",
            "cert",
            hint=f"set smtp_tls_servername = {server} (Postfix 3.4+)",
            started=started,
        )
    else:
        message = f"the relay presents a different certificate {label} ({other_cert['subject']})"
        run.add("cert.sni", "cert.sni_differs", WARN, message, "cert", started=started)
