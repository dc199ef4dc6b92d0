# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the plan's addresses: the host's mail names, sender rewriting, local mail routes."""

from __future__ import annotations

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._plan.inputs import text_variable, variable_error
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import validate_entries
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import has_unsafe_characters, is_hostname

DEFAULT_LOCAL_RECIPIENTS = ("root", "postmaster")
LOCAL_NAMES = ("localhost", "localhost.localdomain")


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower().rstrip(".")


def domain_allowed(domain: str, allowed: list[str]) -> bool:
    for raw_rule in allowed:
        rule = raw_rule.lower().rstrip(".")
        if rule.startswith("*."):
            if domain.endswith(rule[1:]):
                return True
        elif domain == rule:
            return True
    return False


def mail_names(variables: dict, host: dict) -> dict:
    """myhostname, myorigin and the local domains Postfix puts on local senders (what rewriting must catch)."""
    myhostname = text_variable(variables, "postfix_myhostname")
    variable = "postfix_myhostname"
    if not myhostname:
        # Postfix's own rule for a host name without a dot: it appends .localdomain.
        fqdn = str(host.get("fqdn") or "").strip().rstrip(".")
        short = str(host.get("hostname") or "").strip()
        myhostname = fqdn if "." in fqdn else f"{short or fqdn or 'localhost'}.localdomain"
        variable = "postfix_myhostname (default from the host's name)"
    if "." not in myhostname.strip(".") or not is_hostname(myhostname):
        raise variable_error(
            variable, f"{myhostname!r} is not a fully qualified host name", "for example vm1.example.org"
        )
    myorigin = text_variable(variables, "postfix_myorigin") or myhostname
    if not is_hostname(myorigin):
        raise variable_error("postfix_myorigin", f"{myorigin!r} is not a domain name", "for example example.org")
    local = [myorigin, myhostname, *LOCAL_NAMES]
    for fact in ("fqdn", "hostname"):
        name = str(host.get(fact) or "").strip().rstrip(".")
        if name and is_hostname(name):
            local.append(name)
    return {
        "myhostname": myhostname,
        "myorigin": myorigin,
        "local_domains": list(dict.fromkeys(n.lower() for n in local)),
    }


def sender_rewrites(variables: dict, names: dict) -> tuple[dict, list[str]]:
    sender = text_variable(variables, "postfix_sender_address")
    canonical = {}
    if sender:
        if "@" not in sender or any(c.isspace() for c in sender) or not is_hostname(domain_of(sender)):
            raise variable_error(
                "postfix_sender_address", f"{sender!r} is not a mail address", "for example noreply@example.org"
            )
        canonical = {f"@{name}": sender for name in names["local_domains"]}
    extra = variables.get("postfix_sender_canonical") or {}
    try:
        extra = validate_entries({str(k): v for k, v in extra.items()})
    except SmtpRelayError as e:
        raise variable_error("postfix_sender_canonical", e.msg.removeprefix("entries").lstrip(": ")) from None
    for key, value in extra.items():
        if any(c.isspace() for c in value):
            raise variable_error(
                f"postfix_sender_canonical.{key}", f"{value!r} is not one address", "write user@example.org"
            )
    canonical.update(extra)
    rewritten = sorted({domain_of(v) for v in canonical.values()})
    allowed = [str(d) for d in variables.get("postfix_allowed_sender_domains") or []]
    for domain in allowed:
        if not is_hostname(domain.removeprefix("*.")):
            raise variable_error(
                "postfix_allowed_sender_domains", f"{domain!r} is not a domain", "write example.org or *.example.org"
            )
    if allowed:
        candidates = rewritten or [names["myorigin"]]
        outside = [d for d in candidates if not domain_allowed(d, allowed)]
        if outside:
            variable = (
                "postfix_sender_address" if sender else "postfix_sender_canonical" if extra else "postfix_myorigin"
            )
            raise variable_error(
                variable,
                f"sender domain(s) {', '.join(outside)} outside postfix_allowed_sender_domains",
                "allowed: " + ", ".join(allowed),
            )
    return canonical, rewritten


def local_mail_routes(variables: dict, names: dict) -> dict:
    """Where mail for root, postmaster and the like goes: {recipient@local domain: address} (empty: unchanged).

    Cron and daemons write to a bare ``root``; Postfix makes it ``root@$myorigin``, a mailbox at the relay's side
    that nobody reads or that bounces. Only the named recipients are rewritten, at the host's own names, so mail
    for other people at those domains still reaches them.
    """
    target = text_variable(variables, "postfix_local_mail_to")
    recipients = [str(r).strip() for r in variables.get("postfix_local_recipients") or DEFAULT_LOCAL_RECIPIENTS]
    if not target:
        return {}
    if "@" not in target or any(c.isspace() for c in target) or not is_hostname(domain_of(target)):
        raise variable_error(
            "postfix_local_mail_to", f"{target!r} is not a mail address", "for example ops@example.org"
        )
    for recipient in recipients:
        if not recipient or "@" in recipient or has_unsafe_characters(recipient) or any(c.isspace() for c in recipient):
            raise variable_error(
                "postfix_local_recipients", f"{recipient!r} is not a local user name", "for example root"
            )
    return {f"{r.lower()}@{d}": target for r in recipients for d in names["local_domains"]}


def unapproved_sender_rules(variables: dict) -> list[dict]:
    """postfix_unapproved_senders_to: one regexp rule that rewrites every sender outside the approved domains to
    an approved address (what campus relays do themselves), instead of the relay rejecting the mail.

    The rule is negated (``!/@(approved)$/``), so approved senders, bounces (the null sender is never rewritten)
    and the local senders that sender_canonical already rewrote (searched first) pass as they are. Postfix's
    regexp tables match without regard to case by default.
    """
    target = text_variable(variables, "postfix_unapproved_senders_to")
    if not target:
        return []
    if "@" not in target or any(c.isspace() for c in target) or not is_hostname(domain_of(target)):
        raise variable_error(
            "postfix_unapproved_senders_to", f"{target!r} is not a mail address", "for example noreply@example.org"
        )
    allowed = [str(d).lower().rstrip(".") for d in variables.get("postfix_allowed_sender_domains") or []]
    if not allowed:
        raise variable_error(
            "postfix_unapproved_senders_to",
            "needs postfix_allowed_sender_domains, the domains that are not rewritten",
            "list the relay's approved sender domains there",
        )
    if not domain_allowed(domain_of(target), allowed):
        raise variable_error(
            "postfix_unapproved_senders_to",
            f"{domain_of(target)} is outside postfix_allowed_sender_domains",
            "allowed: " + ", ".join(allowed),
        )
    # Host names hold letters, digits, hyphens and dots: only the dots mean something in a POSIX regex.
    alternatives = [
        "[^@]*\\." + d[2:].replace(".", "\\.") if d.startswith("*.") else d.replace(".", "\\.") for d in allowed
    ]
    return [{"pattern": f"!/@({'|'.join(alternatives)})$/", "action": target}]
