# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: regexp and pcre lookup tables, ordered ``pattern action`` lines.

Postfix reads them as they are (no postmap build), tries the patterns in order, and only warns about a line it
cannot read, skipping it: a header check that silently does nothing. So a table is checked twice: here for its
shape (delimiters, flags, one line each), and by Postfix itself on a staged copy (:func:`check_with_postfix`), whose
warnings refuse it. Python's ``re`` is not Postfix's regular expression library and judges no pattern.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.staging import PLUGIN_PACKAGES, staged_config
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import has_unsafe_characters

PATTERN_TYPES = ("regexp", "pcre")
# The flags each type takes after the closing delimiter (regexp_table(5), pcre_table(5)).
FLAGS = {"regexp": "imx", "pcre": "imsxAEUX"}
# Any header line: what postmap looks up only matters for opening (and so reading) the table.
PROBE = "X-Smtp-Relay-Probe: table check"
# Characters that mean something in a regular expression (a pattern starting with one forgot its delimiter), and
# '#', which would make the line a comment.
_NOT_DELIMITERS = "\\^$.*+?()[]{}|#"
_POSTFIX_LINE = re.compile(r"line (\d+): (.*)")


def pattern_problem(pattern: object, map_type: str) -> str | None:
    """Why Postfix could not read ``pattern`` as one pattern of a ``map_type`` table (None: it can try).

    The form is ``/regex/flags``, ``!/regex/flags`` (does not match) or, in regexp tables, ``/a/!/b/`` (a and not
    b); the delimiter may be any character but white space, a letter, a digit or one that means something in a
    regular expression (``/`` as usual).
    """
    if not isinstance(pattern, str) or not pattern:
        return "is empty or not text"
    if has_unsafe_characters(pattern):
        return "contains a line break or control character; a pattern is one line"
    position, parts = 0, 0
    while position < len(pattern):
        if parts and not (map_type == "regexp" and parts == 1 and pattern[position] == "!"):
            return f"has {pattern[position:]!r} after the flags; valid flags: {', '.join(FLAGS[map_type])}"
        position += 1 if pattern[position] == "!" else 0
        delimiter = pattern[position] if position < len(pattern) else ""
        if not delimiter or delimiter.isspace() or delimiter.isalnum() or delimiter in _NOT_DELIMITERS:
            return "must start with a delimiter such as / (for example /^X-Mailer:/)"
        position = _closing(pattern, position + 1, delimiter)
        if position is None:
            return f"has no closing delimiter {delimiter!r}"
        while position < len(pattern) and pattern[position] in FLAGS[map_type]:
            position += 1
        parts += 1
    return None


def _closing(pattern: str, position: int, delimiter: str) -> int | None:
    """The position after the delimiter that closes the regex starting at ``position`` (a backslash escapes)."""
    while position < len(pattern):
        if pattern[position] == "\\":
            position += 2
        elif pattern[position] == delimiter:
            return position + 1
        else:
            position += 1
    return None


def action_problem(action: object) -> str | None:
    if not isinstance(action, str) or not action.strip():
        return "is empty or not text"
    if has_unsafe_characters(action) or action != action.strip():
        return "contains a line break or control character, or leading/trailing white space; an action is one line"
    return None


def validate_rules(entries: object, map_type: str, field: str = "entries") -> list[tuple[str, str]]:
    """``entries`` as ordered (pattern, action) pairs: a list of ``{pattern, action}``, or a mapping pattern to
    action (kept in its order). A problem is refused naming ``field[N]`` and the pattern."""
    if isinstance(entries, Mapping):
        pairs = list(entries.items())
    elif isinstance(entries, (list, tuple)):
        pairs = [_pair(item, f"{field}[{index}]") for index, item in enumerate(entries)]
    else:
        raise SmtpRelayError(
            f"{field} of a {map_type} table must be a list of {{pattern, action}} or a mapping of pattern to action, "
            f"got {type(entries).__name__}",
            field=field,
        )
    for index, (pattern, action) in enumerate(pairs):
        problem = pattern_problem(pattern, map_type)
        what = "pattern"
        if problem is None:
            problem, what = action_problem(action), "action"
        if problem:
            raise SmtpRelayError(f"{field}[{index}]: {what} of {pattern!r} {problem}", field=f"{field}[{index}]")
    return list(pairs)


def _pair(item: object, where: str) -> tuple[object, object]:
    if not isinstance(item, Mapping) or set(item) != {"pattern", "action"}:
        raise SmtpRelayError(f"{where} must be a mapping with exactly pattern and action, got {item!r}", field=where)
    return item["pattern"], item["action"]


def render_rules(header: str, rules: list[tuple[str, str]]) -> str:
    """``header`` (whole lines), then one ``pattern action`` line per rule, in the given order."""
    return header + "".join(f"{pattern} {action}\n" for pattern, action in rules)


def check_with_postfix(
    runner: PostconfRunner, config_dir: str, text: str, map_type: str, rules: list, *, where: str = ""
) -> None:
    """Let Postfix read a staged copy of the table (``postmap -q``): a line it warns about is refused, naming the
    entry (``where`` prefixes the option, as ``maps[0].``); so is a table type this Postfix lacks."""
    first_rule_line = text.count("\n") - len(rules) + 1
    # An empty main.cf beside the copy: the table is judged alone, on a host where main.cf is still to be made too.
    with staged_config(config_dir, "") as staging:
        staged = os.path.join(staging, "table")
        with open(staged, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
        rc, _out, err = runner.run_unchecked("postmap", ["-c", staging, "-q", PROBE, f"{map_type}:{staged}"])
    complaints = [line.strip() for line in (err or "").splitlines() if "warning:" in line or "fatal:" in line]
    if rc in (0, 1) and not complaints:
        return
    for complaint in complaints:
        line = _POSTFIX_LINE.search(complaint)
        index = int(line.group(1)) - first_rule_line if line else -1
        if 0 <= index < len(rules):
            raise SmtpRelayError(
                f"{where}entries[{index}]: Postfix refuses {rules[index][0]!r}: {line.group(2)}",
                field=f"{where}entries[{index}]",
            )
    detail = "; ".join(complaints).replace(staging, config_dir) or f"rc={rc}"
    package = PLUGIN_PACKAGES.get(map_type) if "unsupported dictionary type" in detail else None
    hint = f" (install {package})" if package else ""
    raise SmtpRelayError(f"{where}type {map_type}: Postfix cannot read the table{hint}: {detail}", field=f"{where}type")
