# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: a host's effective relay settings, map state, service and queue, and expectations.

Read-only: it runs postconf, ``postfix status`` and ``postqueue -j`` through the runner and reads map files.
SASL maps are read for their keys only; no value (password) leaves this module.
"""

from __future__ import annotations

import collections
import json
import os
import stat
import time

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import (
    INDEX_SUFFIX,
    index_path,
    is_stale,
    parse_map,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import (
    DEFAULT_CONFIG_DIR,
    PostconfRunner,
    postfix_present,
    read_effective,
    read_nondefault,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import postfix_version as read_postfix_version
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import (
    SEPARATORS,
    RelayhostError,
    parse_relayhost,
    relay_tokens,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.settings import Settings

MAP_PARAMETERS = (
    "smtp_sasl_password_maps",
    "sender_canonical_maps",
    "smtp_generic_maps",
    "canonical_maps",
    "recipient_canonical_maps",
    "sender_dependent_relayhost_maps",
    "smtp_tls_policy_maps",
)
INFO_PARAMETERS = (
    "relayhost",
    "smtp_tls_security_level",
    "smtp_use_tls",
    "smtp_enforce_tls",
    "smtp_tls_wrappermode",
    "smtp_tls_CAfile",
    "smtp_tls_CApath",
    "smtp_tls_servername",
    "smtp_sasl_auth_enable",
    "smtp_sasl_security_options",
    "smtp_sasl_tls_security_options",
    "inet_interfaces",
    "inet_protocols",
    "mydestination",
    "myorigin",
    "myhostname",
    "mydomain",
    "local_transport",
    "compatibility_level",
    "default_database_type",
    *MAP_PARAMETERS,
)
# Map types whose data lives in a file next to main.cf (the others are servers or inline values).
FILE_MAP_TYPES = (*INDEX_SUFFIX, "dbm", "regexp", "pcre", "cidr")
LOOPBACK = {"loopback-only", "localhost", "127.0.0.1", "::1", "[::1]"}
QUEUES = ("active", "deferred", "hold", "incoming", "maildrop")
TOP_REASONS = 5


def map_references(value: str) -> list[tuple[str, str]]:
    """``hash:/etc/postfix/sasl_passwd, proxy:lmdb:/x`` -> [(type, path)]; proxy: is only a transport."""
    result = []
    for token in SEPARATORS.split(value or ""):
        if not token or ":" not in token:
            continue
        map_type, _unused, path = token.removeprefix("proxy:").partition(":")
        result.append((map_type, path))
    return result


def map_state(parameter: str, map_type: str, path: str) -> dict:
    """Whether a map's file is there, built, fresh, and with which mode; nothing of its content."""
    entry = {"parameter": parameter, "map": f"{map_type}:{path}", "type": map_type, "path": path}
    if map_type not in FILE_MAP_TYPES or not path.startswith("/"):
        entry.update(file=False)
        return entry
    entry["file"] = True
    entry.update(_file_state(path))
    index = index_path(path, map_type) if map_type in INDEX_SUFFIX else None
    entry["index"] = index
    if index:
        index_state = _file_state(index)
        entry["index_exists"] = index_state["exists"]
        entry["index_mode"] = index_state["mode"]
        entry["fresh"] = entry["exists"] and index_state["exists"] and not is_stale(path, map_type)
    else:
        entry["index_exists"] = entry["index_mode"] = None
        entry["fresh"] = entry["exists"]
    return entry


def _file_state(path: str) -> dict:
    try:
        st = os.stat(path)
    except OSError:
        return {"exists": False, "mode": None, "world_readable": None}
    return {"exists": True, "mode": f"{stat.S_IMODE(st.st_mode):04o}", "world_readable": bool(st.st_mode & 0o004)}


def read_map_keys(map_type: str, path: str) -> list[str] | None:
    """Keys of a map's source file (None when it cannot be read); values are dropped at once."""
    if map_type not in INDEX_SUFFIX:
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return list(parse_map(f.read()))
    except OSError:
        return None


def sasl_map_keys(value: str) -> list[str] | None:
    """All keys of the SASL password maps, or None when any of them cannot be read."""
    keys: list[str] = []
    refs = map_references(value)
    if not refs:
        return None
    for map_type, path in refs:
        found = read_map_keys(map_type, path)
        if found is None:
            return None
        keys.extend(found)
    return keys


def map_entries(value: str) -> dict[str, str] | None:
    """Entries of the tables a parameter names (the first table's wins, as Postfix's lookup order), for tables that
    hold no secret (smtp_tls_policy_maps); None when one of them cannot be read."""
    entries: dict[str, str] = {}
    for map_type, path in map_references(value):
        if map_type not in INDEX_SUFFIX:
            return None
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                found = parse_map(f.read())
        except OSError:
            return None
        for key, entry in found.items():
            entries.setdefault(key, entry)
    return entries


def configured_credentials(value: str, relayhost: str) -> tuple[str, str] | None:
    """(user, password) stored for the relayhost in the SASL maps, for a live AUTH test; never returned to users."""
    tokens = {t.lower() for t in relay_tokens(relayhost)}
    for map_type, path in map_references(value):
        if map_type not in INDEX_SUFFIX:
            continue
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                entries = parse_map(f.read())
        except OSError:
            continue
        for key, secret in entries.items():
            if key.lower() in tokens and ":" in secret:
                user, _unused, password = secret.partition(":")
                return user, password
    return None


def relay_mode(relayhost: str, inet_interfaces: str, mydestination: str) -> str:
    """null_client (relays everything, receives nothing), satellite (relays, delivers locally) or other."""
    if not relayhost.strip():
        return "other"
    loopback = set(SEPARATORS.split(inet_interfaces.strip().lower())) - {""} <= LOOPBACK
    if loopback and not mydestination.strip():
        return "null_client"
    return "satellite"


def queue_entries(text: str) -> list[dict]:
    """``postqueue -j`` output -> one dict per queued message (lines that are not a JSON object are skipped)."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict):
            entries.append(item)
    return entries


def parse_queue(text: str, now: float) -> dict:
    """``postqueue -j`` output -> counts per queue, age of the oldest deferred message, top deferral reasons."""
    counts = dict.fromkeys(QUEUES, 0)
    oldest = None
    reasons: collections.Counter = collections.Counter()
    for item in queue_entries(text):
        queue = item.get("queue_name", "")
        counts[queue] = counts.get(queue, 0) + 1
        if queue == "deferred":
            arrival = item.get("arrival_time")
            if isinstance(arrival, (int, float)):
                oldest = arrival if oldest is None else min(oldest, arrival)
            for rcpt in item.get("recipients") or ():
                reason = " ".join(str(rcpt.get("delay_reason") or "").split())
                if reason:
                    reasons[reason[:300]] += 1
    return {
        **counts,
        "total": sum(counts.values()),
        "oldest_deferred_age": None if oldest is None else max(0, int(now - oldest)),
        "deferral_reasons": [{"reason": r, "count": n} for r, n in reasons.most_common(TOP_REASONS)],
    }


def gather(runner: PostconfRunner, config_dir: str = DEFAULT_CONFIG_DIR, now=time.time) -> dict:
    """The host's relay facts (see relay_info's RETURN documentation for each key)."""
    if not postfix_present(runner):
        return {"postfix_installed": False, "relayhost": None, "relayhosts": [], "mode": "other"}
    values = read_effective(runner, config_dir, list(INFO_PARAMETERS))
    configured = read_nondefault(runner, config_dir)
    s = Settings(values)
    raw = values.get("relayhost", "")
    facts = {"postfix_installed": True, "postfix_version": read_postfix_version(runner), "relayhost": raw}
    try:
        facts["relayhosts"], facts["relayhost_error"] = parse_relayhost(raw), None
    except RelayhostError as e:
        facts["relayhosts"], facts["relayhost_error"] = [], e.msg
    level = s.tls_level()
    keys = sasl_map_keys(s.get("smtp_sasl_password_maps"))
    tokens = {t.lower() for t in relay_tokens(raw)}
    facts.update(
        {
            "tls_security_level": level,
            "tls_mode": s.tls_mode(),
            "tls_wrappermode": s.flag("smtp_tls_wrappermode"),
            "tls_ca_file": s.get("smtp_tls_CAfile") or None,
            "tls_ca_path": s.get("smtp_tls_CApath") or None,
            "tls_servername": s.get("smtp_tls_servername") or None,
            "sasl_enabled": s.flag("smtp_sasl_auth_enable"),
            "sasl_password_maps": s.get("smtp_sasl_password_maps"),
            "sasl_security_options": s.get("smtp_sasl_security_options"),
            "sasl_tls_security_options": s.get("smtp_sasl_tls_security_options"),
            "sasl_key_matches": None if keys is None or not tokens else any(k.lower() in tokens for k in keys),
            "maps": [
                map_state(param, map_type, path)
                for param in MAP_PARAMETERS
                for map_type, path in map_references(s.get(param))
            ],
            "inet_interfaces": values.get("inet_interfaces", ""),
            "inet_protocols": values.get("inet_protocols", ""),
            "mydestination": values.get("mydestination", ""),
            "myorigin": values.get("myorigin", ""),
            "myorigin_expanded": s.get("myorigin"),
            "myhostname": values.get("myhostname", ""),
            "local_transport": values.get("local_transport", ""),
            "compatibility_level": values.get("compatibility_level", ""),
            "configured_parameters": sorted(configured),
            "mode": relay_mode(raw, values.get("inet_interfaces", ""), values.get("mydestination", "")),
        }
    )
    facts.update(_service_and_queue(runner, config_dir, now()))
    return facts


def _service_and_queue(runner: PostconfRunner, config_dir: str, now: float) -> dict:
    try:
        rc, _out, _err = runner.run_unchecked("postfix", ["-c", config_dir, "status"])
        running = {0: True, 1: False}.get(rc)
    except SmtpRelayError:
        running = None
    try:
        rc, out, err = runner.run_unchecked("postqueue", ["-c", config_dir, "-j"])
    except SmtpRelayError as e:
        rc, out, err = 127, "", e.msg
    if rc == 0:
        return {"service_running": running, "queue": parse_queue(out, now), "queue_error": None}
    return {
        "service_running": running,
        "queue": None,
        "queue_error": " ".join((err or out).split())[:300] or f"rc={rc}",
    }


# -- expectations ------------------------------------------------------------------------------------

_TRUE = ("yes", "true", "on", "1")
_FALSE = ("no", "false", "off", "0")


def _lookup(facts: dict, field: str):
    value = facts
    for part in field.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(field)
        value = value[part]
    return value


def _show(value) -> str:
    if value is None:
        return "null"
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


def _as_bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _same(field: str, expected, found, facts: dict) -> bool:
    if field == "relayhost":
        try:
            wanted = parse_relayhost(expected or "")
        except RelayhostError as e:
            raise SmtpRelayError(f"expect.relayhost: {e.msg}", field="expect.relayhost") from None
        return wanted == facts.get("relayhosts") and (found is not None or not wanted)
    if isinstance(found, bool) or isinstance(expected, bool):
        return _as_bool(expected) == _as_bool(found) and _as_bool(found) is not None
    if expected is None:
        return found in (None, "", [])
    if isinstance(expected, list):
        items = found if isinstance(found, list) else [w for w in SEPARATORS.split(str(found or "")) if w]
        return [str(x) for x in expected] == [str(x) for x in items]
    if isinstance(found, (int, float)) and not isinstance(expected, (int, float)):
        try:
            return float(expected) == found
        except ValueError:
            return False
    if field == "myorigin" and str(expected) == facts.get("myorigin_expanded"):
        return True
    return str(expected).strip() == str(found if found is not None else "").strip()


def _queue_unread(facts: dict, field: str) -> str | None:
    """Why a queue field has no value (the queue could not be read), or None when it has one or is not a queue field."""
    if field.split(".", 1)[0] != "queue" or facts.get("queue") is not None:
        return None
    reason = facts.get("queue_error") or "no reason given"
    if facts.get("service_running") is False:
        return f"Postfix is not running and the queue could not be read: {reason}"
    return f"the queue could not be read: {reason}"


def compare(facts: dict, expect: dict) -> list[str]:
    """Every mismatch as ``field: expected X, found Y``; an unknown field is refused, naming what is known."""
    if not isinstance(expect, dict):
        raise SmtpRelayError(f"expect must be a dict of field: value, got {type(expect).__name__}", field="expect")
    mismatches = []
    installed = facts.get("postfix_installed", True)
    for field in sorted(expect):
        unread = _queue_unread(facts, field) if installed else None
        if unread:
            mismatches.append(f"{field}: expected {_show(expect[field])}, found nothing ({unread})")
            continue
        try:
            found = _lookup(facts, field)
        except KeyError:
            if installed:
                known = ", ".join(sorted(k for k in facts if not isinstance(facts[k], list)))
                raise SmtpRelayError(
                    f"expect: unknown field {field!r}; known fields: {known}", field="expect"
                ) from None
            found = None
        if not _same(field, expect[field], found, facts):
            shown = _show(found) if installed or found not in (None, []) else "nothing (Postfix is not installed)"
            mismatches.append(f"{field}: expected {_show(expect[field])}, found {shown}")
    return mismatches


def relay_info(runner: PostconfRunner, config_dir: str = DEFAULT_CONFIG_DIR, expect: dict | None = None, now=time.time):
    """Facts, compared with ``expect``: returns the result, raises SmtpRelayError (with it) on mismatches."""
    facts = gather(runner, config_dir, now)
    mismatches = compare(facts, expect or {})
    result = {"relay": facts, "mismatches": mismatches}
    if mismatches:
        raise SmtpRelayError(
            f"{len(mismatches)} setting(s) differ from what was expected: " + "; ".join(mismatches), **result
        )
    result["msg"] = f"relayhost {facts.get('relayhost') or '(none)'}, mode {facts.get('mode')}" + (
        f"; {len(expect)} expectation(s) met" if expect else ""
    )
    return result
