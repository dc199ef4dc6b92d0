# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the Postfix relayhost grammar, port/TLS rules and the unsafe-character rule.

Provider facts (hosts, ports, SPF includes, Amazon SES) are in ``_providers``.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.smtp.relay.plugins.module_utils._checks import shown
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError

# Symbolic services Postfix resolves through /etc/services for a relayhost port.
SERVICES = {"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465}

TLS_MODES = ("starttls", "implicit", "none")
IMPLICIT_TLS_PORTS = frozenset({465, 2465})
STARTTLS_PORTS = frozenset({25, 587, 2525, 2587})

_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
# Characters that must never reach a Postfix file: C0/C1 controls and every character Python (or an
# editor) treats as a line boundary. Postfix itself splits main.cf and maps on "\n" only, so a value holding
# one of them is read by Postfix one way and by every other tool another way.
UNSAFE_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# What separates relayhost destinations and list values in main.cf: commas and white space.
SEPARATORS = re.compile(r"[,\s]+")


class RelayhostError(SmtpRelayError):
    """A relayhost (or one of its parts) that Postfix would not accept as meant."""


def described(value) -> str:
    """``repr`` for a message, cut short; repr() itself raises on an int of more than 4300 digits inside a dict."""
    try:
        return shown(value, 300)
    except ValueError:
        return f"<a {type(value).__name__} holding a huge number>"


def _fail(value, problem: str, accepted: str = "") -> RelayhostError:
    text = f"invalid relayhost {described(value)}: {problem}"
    if accepted:
        text += f"; {accepted}"
    return RelayhostError(text, value=value if isinstance(value, str) else described(value))


def has_unsafe_characters(value: str) -> bool:
    return bool(UNSAFE_CHARACTERS.search(value))


def reject_control_characters(field: str, value: str) -> None:
    """A newline would end the main.cf line and start another parameter: never let one through."""
    if has_unsafe_characters(value):
        raise SmtpRelayError(
            f"{field} contains a control character (newline, tab...): {value!r}; "
            "Postfix settings must be a single line of printable text",
            field=field,
        )


def secret_problem(value: str) -> str | None:
    """Why a secret would not be used as given, never showing it; None when it is sound.

    The one shape rule for secrets (the role's, and the key ses_smtp_password signs): a line break or outer white
    space is a copy-and-paste or file-reading accident; Postfix, or the signature, would use another secret.
    """
    if has_unsafe_characters(value) or value != value.strip():
        return "the value (hidden) has a line break, a control character or leading/trailing white space"
    if not value.isascii() and any("\ud800" <= c <= "\udfff" for c in value):
        return "the value (hidden) is not valid Unicode text (a lone surrogate, from undecodable bytes)"
    return None


def is_hostname(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    labels = name[:-1].split(".") if name.endswith(".") else name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


def ip_address(text: str):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_port(text, value=None) -> int:
    """A port as Postfix reads it: a number 1-65535 or a known service name."""
    shown_value = text if value is None else value
    if isinstance(text, bool):
        raise _fail(shown_value, f"port {text!r} is not a number", "a port is 1-65535 or one of " + ", ".join(SERVICES))
    if isinstance(text, int):
        port = text
    elif isinstance(text, str) and text.isascii() and text.isdigit():
        digits = text.lstrip("0")  # Postfix reads "0587" as 587
        if len(digits) > 5:  # not a port; and int() refuses text of more than 4300 digits
            raise _fail(shown_value, f"port {shown(text)} is outside 1-65535")
        port = int(digits or "0")
    elif isinstance(text, str) and text in SERVICES:
        return SERVICES[text]
    else:
        raise _fail(
            shown_value,
            f"unknown port or service {shown(text)}",
            "use a number 1-65535 or one of " + ", ".join(SERVICES),
        )
    if not 1 <= port <= 65535:
        raise _fail(shown_value, f"port {shown(port)} is outside 1-65535")
    return port


def _parse_bracketed(token: str, whole: str) -> dict:
    end = token.find("]")
    if end < 0:
        raise _fail(whole, f"unbalanced brackets in {token!r}", "write [host]:port")
    inner, rest = token[1:end], token[end + 1 :]
    if "[" in inner or "[" in rest or "]" in rest:
        raise _fail(whole, f"unbalanced brackets in {token!r}", "write [host]:port")
    if rest and not rest.startswith(":"):
        raise _fail(whole, f"unexpected {rest!r} after the brackets", "write [host]:port")
    port = parse_port(rest[1:], whole) if rest else 25
    if inner.lower().startswith("ipv6:"):
        address = ip_address(inner[5:])
        if address is None or address.version != 6:
            raise _fail(whole, f"{inner[5:]!r} is not an IPv6 address")
        return {"host": str(address), "port": port, "mx_lookup": False, "is_ip": True}
    if ip_address(inner) is not None and ip_address(inner).version == 6:
        raise _fail(whole, f"IPv6 address {inner!r} without the ipv6: prefix", f"write [ipv6:{inner}]")
    if ":" in inner:
        host, _unused, port_text = inner.rpartition(":")
        raise _fail(whole, f"the port is inside the brackets in {token!r}", f"write [{host}]:{port_text}")
    if ip_address(inner) is not None:
        return {"host": inner, "port": port, "mx_lookup": False, "is_ip": True}
    if not is_hostname(inner):
        raise _fail(whole, f"{inner!r} is not a valid host name")
    return {"host": inner, "port": port, "mx_lookup": False, "is_ip": False}


def _parse_bare(token: str, whole: str) -> dict:
    if "]" in token:
        raise _fail(whole, f"unbalanced brackets in {token!r}", "write [host]:port")
    if token.count(":") > 1:
        raise _fail(whole, f"IPv6 address {token!r} without brackets", "write [ipv6:ADDRESS]:port")
    host, _unused, port_text = token.partition(":")
    if ":" in token and not port_text:
        raise _fail(whole, f"missing port after {host!r}:")
    port = parse_port(port_text, whole) if port_text else 25
    if ip_address(host) is not None:
        raise _fail(
            whole, f"IP address {host!r} without brackets", f"write [{host}]" + (f":{port}" if port_text else "")
        )
    if not is_hostname(host):
        raise _fail(whole, f"{host!r} is not a valid host name")
    return {"host": host, "port": port, "mx_lookup": True, "is_ip": False}


def parse_relayhost(value) -> list[dict]:
    """Postfix relayhost text -> [{host, port, mx_lookup, is_ip}, ...] in the order Postfix tries them."""
    if value is None:
        return []
    if not isinstance(value, str):
        raise RelayhostError(f"relayhost must be a string, got {type(value).__name__}", value=repr(value))
    if has_unsafe_characters(value):
        raise _fail(value, "it contains a control character (newline, tab...)", "a relayhost is one line of text")
    result = []
    for token in relay_tokens(value):
        parse = _parse_bracketed if token.startswith("[") else _parse_bare
        result.append(parse(token, value))
    return result


def relay_tokens(relayhost: str) -> list[str]:
    """The relayhost destinations exactly as written: Postfix looks SASL map keys up by this text."""
    return [t for t in SEPARATORS.split(relayhost.strip()) if t]


def _format_one(relay) -> str:
    shown_relay = described(relay)
    if not isinstance(relay, dict):
        raise RelayhostError(f"a relay must be a dict with host and port, got {shown_relay}", value=shown_relay)
    unknown = set(relay) - {"host", "port", "mx_lookup", "is_ip"}
    if unknown:
        keys = ", ".join(sorted(described(k) for k in unknown))
        raise RelayhostError(f"unknown relay key(s) {keys}; accepted: host, port, mx_lookup", value=shown_relay)
    host = relay.get("host")
    if not isinstance(host, str) or not host:
        raise RelayhostError(f"relay host must be a non-empty string, got {described(host)}", value=shown_relay)
    reject_control_characters("relay host", host)
    mx_lookup = relay.get("mx_lookup")
    if not isinstance(mx_lookup, (bool, type(None))):
        # Callers turn text ("false", "no") into a boolean first, with Ansible's rules (the relayhost filter does).
        raise RelayhostError(f"relay mx_lookup must be true or false, got {described(mx_lookup)}", value=shown_relay)
    port = relay.get("port")
    suffix = "" if port is None else f":{parse_port(port, relay)}"
    address = ip_address(host[5:] if host.lower().startswith("ipv6:") else host)
    if address is not None:
        inner = f"ipv6:{address}" if address.version == 6 else str(address)
        return f"[{inner}]{suffix}"
    if not is_hostname(host):
        raise RelayhostError(f"relay host {host!r} is not a valid host name or IP address", value=shown_relay)
    return f"{host}{suffix}" if mx_lookup else f"[{host}]{suffix}"


def format_relayhost(value) -> str:
    """{host, port, mx_lookup} or a list of them -> the Postfix relayhost string."""
    relays = value if isinstance(value, list) else [value]
    return ", ".join(_format_one(relay) for relay in relays)


def implied_tls(port: int) -> str | None:
    """The TLS mode a well-known port implies; None for ports (port-forwards...) that need it said."""
    if port in IMPLICIT_TLS_PORTS:
        return "implicit"
    if port in STARTTLS_PORTS:
        return "starttls"
    return None
