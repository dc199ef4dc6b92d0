# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the shape of a check result, shared by every checking module.

A check is ``{id, status, stage, message, hint, ...}``; ids are stable so that playbooks and CI
can act on them, messages are for people.
"""

from __future__ import annotations

import math
import re

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError

PASS = "pass"
WARN = "warn"
FAIL = "fail"
UNKNOWN = "unknown"
SKIP = "skip"
STATUSES = (PASS, WARN, FAIL, UNKNOWN, SKIP)


def check(check_id: str, status: str, message: str, stage: str | None = None, hint: str | None = None, **extra):
    """Build one check entry; ``extra`` keys must hold no secret."""
    if status not in STATUSES:
        raise ValueError(f"unknown check status {status!r}")
    entry = {"id": check_id, "status": status, "stage": stage, "message": message, "hint": hint}
    entry.update(extra)
    return entry


def failed(checks) -> list:
    return [c for c in checks if c["status"] == FAIL]


def summary(checks) -> str:
    counts = {s: 0 for s in STATUSES}
    for c in checks:
        counts[c["status"]] += 1
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    bad = failed(checks)
    if bad:
        text += ": " + "; ".join(f"{c['id']}: {c['message']}" for c in bad)
    return text


# --- verdicts --------------------------------------------------------------------------------------------------

# Worst first. ``skip`` says nothing about the thing checked and never decides a verdict.
SEVERITY = (FAIL, UNKNOWN, WARN, PASS)
# What ``fail_on`` may name: a status that makes a module fail (pass and skip never should).
FAIL_ON_CHOICES = (FAIL, WARN, UNKNOWN)


def verdict(checks) -> str:
    """The worst status among ``checks``: fail > unknown > warn > pass (skips and no checks at all: pass)."""
    seen = {c["status"] for c in checks}
    return next((s for s in SEVERITY if s in seen), PASS)


def is_sound(checks) -> bool:
    """No check failed and none is unknown: a question nobody answered is not a success."""
    return not any(c["status"] in (FAIL, UNKNOWN) for c in checks)


def with_status(checks, statuses) -> list:
    return [c for c in checks if c["status"] in statuses]


def describe(checks, statuses=(FAIL, UNKNOWN)) -> str:
    """Like ``summary``, listing the checks whose status is one of ``statuses`` (fail and unknown by default)."""
    counts = {s: 0 for s in STATUSES}
    for c in checks:
        counts[c["status"]] += 1
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no checks"
    listed = with_status(checks, statuses)
    if listed:
        text += ": " + "; ".join(f"{c['id']} ({c['status']}): {c['message']}" for c in listed)
    return text


# --- option values shared by the checking modules --------------------------------------------------------------
# Bad input is refused with the option's name, never replaced by a default: only a value that was not given at
# all (None) takes the default.

_SHOWN = 80
_ASCII_INT = re.compile(r"[+-]?[0-9]+")
_ASCII_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def shown(value, limit: int = _SHOWN) -> str:
    """``repr`` of a value for a message, cut to ``limit`` characters (a huge input must not make a huge message)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return f"<a number of {value.bit_length()} bits>"  # repr() refuses ints beyond 4300 digits
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 5]}... ({len(text)} characters)"


def _refused(field: str, value, accepted: str) -> SmtpRelayError:
    return SmtpRelayError(f"{field}: {shown(value)} is not valid; accepted: {accepted}", field=field)


def ascii_int(text) -> int | None:
    """A decimal number written in ASCII digits, else None. ``int()`` also reads other scripts' digits (Arabic-Indic,
    fullwidth) and raises on superscripts: remote data must never reach it unchecked."""
    if isinstance(text, str) and text.isascii() and text.isdigit():
        return int(text)
    return None


def int_option(field: str, value, *, default: int | None = None, minimum: int | None = None, maximum=None) -> int:
    """An integer option: an int, or a string of ASCII digits, within [minimum, maximum]; None takes ``default``."""
    if value is None and default is not None:
        value = default
    accepted = "a whole number" + _range_text(minimum, maximum)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _refused(field, value, accepted)
    if isinstance(value, str):
        if not _ASCII_INT.fullmatch(value.strip()):
            raise _refused(field, value, accepted + " written in ASCII digits")
        if len(value.strip()) > 30:  # int() refuses beyond 4300 digits; no option of ours needs 30
            raise _refused(field, value, accepted)
        value = int(value.strip())
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _refused(field, value, accepted)
    return value


def number_option(field: str, value, *, default: float | None = None, above: float = 0.0, maximum=None) -> float:
    """A finite number (int, float or ASCII decimal text) greater than ``above`` and at most ``maximum``."""
    if value is None and default is not None:
        value = default
    accepted = f"a number greater than {above:g}" + (f" and at most {maximum:g}" if maximum is not None else "")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _refused(field, value, accepted)
    if isinstance(value, str):
        if not _ASCII_NUMBER.fullmatch(value.strip()):
            raise _refused(field, value, accepted + " written in ASCII digits")
        value = float(value.strip())
    number = float(value) if not isinstance(value, int) or abs(value) < 2**53 else float("inf")
    if not math.isfinite(number) or number <= above or (maximum is not None and number > maximum):
        raise _refused(field, value, accepted)
    return number


def bool_option(field: str, value, *, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _refused(field, value, "true or false")
    return value


def fail_on_option(value, *, default=(FAIL,), field: str = "fail_on") -> tuple[str, ...]:
    """The statuses that make a module fail; None takes ``default``, [] never fails on a check."""
    if value is None:
        return tuple(default)
    accepted = "a list of " + ", ".join(FAIL_ON_CHOICES)
    if not isinstance(value, (list, tuple)):
        raise _refused(field, value, accepted)
    for item in value:
        if item not in FAIL_ON_CHOICES:
            raise _refused(field, item, accepted)
    return tuple(dict.fromkeys(value))


def _range_text(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum} to {maximum}"
    if minimum is not None:
        return f" of at least {minimum}"
    if maximum is not None:
        return f" of at most {maximum}"
    return ""


# --- CSV ---------------------------------------------------------------------------------------------------------

# A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """Text for one CSV cell that no spreadsheet runs as a formula: OWASP's single quote before a trigger."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_row(values) -> str:
    """One CSV line (RFC 4180 quoting, ending in a newline), every cell through ``csv_cell``.

    Every CSV writer of the collection writes its lines with this. Python's csv writer is not used: with a "\n"
    line terminator it leaves a carriage return unquoted, which splits the row in every reader.
    """
    cells = []
    for value in values:
        text = csv_cell(value)
        if any(c in text for c in ',"\r\n'):
            text = '"' + text.replace('"', '""') + '"'
        cells.append(text)
    return ",".join(cells) + "\n"
