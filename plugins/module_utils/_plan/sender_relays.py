# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: per-sender relays and credentials (``postfix_sender_relays``) for the plan.

Postfix picks the relay by the envelope sender (``sender_dependent_relayhost_maps``: the address, then ``@domain``)
and, with ``smtp_sender_dependent_authentication = yes``, looks the SASL credentials up by the sender first, then by
the next hop. The plan holds no secret: it returns the table, the SASL map keys with their user names and the index
of the relay whose password the role puts next to them.
"""

from __future__ import annotations

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._plan.inputs import variable_error
from ansible_collections.smtp.relay.plugins.module_utils._plan.relay import DEFAULT_PORT
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    described,
    format_relayhost,
    has_unsafe_characters,
    implied_tls,
    parse_port,
    secret_problem,
)
from ansible_collections.smtp.relay.plugins.module_utils._sender.names import normalize_domain, split_address

VARIABLE = "postfix_sender_relays"
SENDER_RELAY_MAP = "sender_relays"
FIELDS = ("senders", "host", "port", "mx_lookup", "username", "password")
MODE_NAMES = {"implicit": "implicit TLS", "starttls": "STARTTLS", "none": "no TLS"}


def sender_relays(variables: dict, relay: dict, allow_plaintext: bool) -> dict:
    """``postfix_sender_relays`` -> ``{"table": {sender key: relayhost}, "sasl": [{key, username, relay}]}``.

    ``relay``: the main relay of the plan (its TLS mode applies to every relay). ``sasl`` lists the SASL map keys
    (the senders of relays with credentials) with the user name and the index of the entry holding the password.
    """
    table, sasl, owners = {}, [], {}
    entries = variables.get(VARIABLE) or []
    if entries and variables.get("postfix_relay_tls_fingerprints"):
        # Pinning makes smtp_tls_security_level = fingerprint for every relay, with the main relay's pins only.
        raise variable_error(
            VARIABLE,
            "cannot be used with postfix_relay_tls_fingerprints: the pinned level applies to every relay, and the "
            "pins are the main relay's certificate",
            "verify the relays' certificates against a CA (postfix_relay_ca_file) instead of pinning",
        )
    for index, raw in enumerate(entries):
        where = f"{VARIABLE}[{index}]"
        entry = _entry(raw, where)
        relayhost = _relayhost(entry, where, relay["tls"])
        username = _username(entry, where, relay["tls"], allow_plaintext)
        senders = entry.get("senders")
        if not isinstance(senders, list) or not senders:
            raise variable_error(f"{where}.senders", "no sender given", "a list of domains, @domains or addresses")
        for position, sender in enumerate(senders):
            field = f"{where}.senders[{position}]"
            key = sender_key(sender, field)
            if key in owners:
                raise variable_error(field, f"{key} is already routed by {owners[key]}", "each sender has one relay")
            owners[key] = field
            table[key] = relayhost
            if username:
                sasl.append({"key": key, "username": username, "relay": index})
    return {"table": table, "sasl": sasl}


def sender_relay_parameters(senders: dict, reference: str | None) -> dict:
    """The main.cf parameters of the per-sender relays (``None`` removes one); ``reference``: the table's."""
    return {
        "sender_dependent_relayhost_maps": reference if senders["table"] else None,
        # Without it Postfix looks the SASL map up by next hop only, and the @domain keys are never read.
        "smtp_sender_dependent_authentication": "yes" if senders["sasl"] else None,
    }


def sender_key(sender, field: str) -> str:
    """A sender as Postfix looks it up in a table: ``@domain`` for a domain, else the address (lower case)."""
    text = sender.strip() if isinstance(sender, str) and not has_unsafe_characters(sender) else ""
    accepted = "write example.org, @example.org or app@example.org"
    if not text:
        raise variable_error(field, f"{described(sender)} is not an address or domain", accepted)
    try:
        if "@" not in text[1:]:
            return "@" + normalize_domain(text.removeprefix("@"))
        local, domain = split_address(text)
    except ValueError as e:
        raise variable_error(field, f"{described(sender)} is not a domain or address ({e})", accepted) from None
    # A table key is one word: a quoted local part with a space could not be looked up.
    if any(c.isspace() or c in '"<>' for c in local) or text.startswith("<"):
        raise variable_error(field, f"{described(sender)} is not an address Postfix can look up", accepted)
    try:
        return f"{local.lower()}@{normalize_domain(domain)}"
    except ValueError as e:
        raise variable_error(field, f"{described(sender)} is not an address (its domain: {e})", accepted) from None


def _entry(raw, where: str) -> dict:
    if not isinstance(raw, dict):
        raise variable_error(where, f"a {type(raw).__name__} is not a relay", "each is {senders, host, port, ...}")
    unknown = sorted(str(k) for k in raw if k not in FIELDS)
    if unknown:
        raise variable_error(f"{where}.{unknown[0]}", "unknown field", "accepted: " + ", ".join(FIELDS))
    return {k: v for k, v in raw.items() if v is not None}


def _relayhost(entry: dict, where: str, main_tls: str) -> str:
    try:
        port = parse_port(entry.get("port", DEFAULT_PORT))
    except SmtpRelayError as e:
        raise variable_error(f"{where}.port", e.msg, "a port is 1-65535") from None
    mode = implied_tls(port)
    # Postfix has one smtp_tls_wrappermode for every relay: a relay speaking another TLS mode would never work.
    if mode and mode != main_tls:
        raise variable_error(
            f"{where}.port",
            f"port {port} means {MODE_NAMES[mode]}, but every relay speaks the main relay's {MODE_NAMES[main_tls]} "
            "(postfix_relay_tls: smtp_tls_wrappermode is one setting for all relays in Postfix)",
            f"give a port where the relay offers {MODE_NAMES[main_tls]}",
        )
    relay = {"host": entry.get("host"), "port": port, "mx_lookup": bool(entry.get("mx_lookup"))}
    try:
        return format_relayhost(relay)
    except SmtpRelayError as e:
        raise variable_error(f"{where}.host", e.msg, "a bare host name or IP; the port goes in port") from None


def _username(entry: dict, where: str, main_tls: str, allow_plaintext: bool) -> str:
    """The relay's SASL user name ('' without credentials); the password is checked for shape only."""
    username = str(entry.get("username") or "")
    if has_unsafe_characters(username) or any(c.isspace() or c == ":" for c in username):
        raise variable_error(f"{where}.username", f"{username!r} contains white space, ':' or a control character")
    password = entry.get("password")
    password = "" if password is None else str(password)
    problem = secret_problem(password) if password else None
    if problem:
        raise variable_error(f"{where}.password", problem, "Postfix would read another secret than the one given")
    if username and not password:
        raise variable_error(f"{where}.password", f"missing for username {username!r}")
    if password and not username:
        raise variable_error(f"{where}.username", "missing: a password was given without a user name")
    if username and main_tls == "none" and not allow_plaintext:
        raise variable_error(
            f"{where}.username",
            "credentials over postfix_relay_tls: none would cross the network in clear",
            "use a relay with TLS, or set postfix_relay_allow_plaintext_auth: true",
        )
    return username
