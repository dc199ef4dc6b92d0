# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: postfix_header_checks, the headers outgoing mail loses or has rewritten.

The rules become a regexp table (no extra package on Debian or EL, unlike pcre) named by ``smtp_header_checks``,
which the SMTP client applies as mail leaves: local mail and the queue keep the original headers. The table is
called ``smtp_header_checks``, not ``header_checks``, so that a hand-written table for cleanup's ``header_checks``
is never overwritten, nor removed when the variable is emptied.
"""

from __future__ import annotations

import re

from ansible_collections.smtp.relay.plugins.module_utils._plan.inputs import variable_error
from ansible_collections.smtp.relay.plugins.module_utils._postfix.pattern_tables import action_problem, pattern_problem

VARIABLE = "postfix_header_checks"
TABLE, TABLE_TYPE, PARAMETER = "smtp_header_checks", "regexp", "smtp_header_checks"
# The actions header_checks(5) allows in smtp_header_checks (DISCARD, FILTER, HOLD, REDIRECT and REJECT act on the
# queue and are not supported there), and whether each takes text: True required, None optional, False none.
ACTIONS = {"IGNORE": False, "DUNNO": False, "REPLACE": True, "PREPEND": True, "WARN": None, "INFO": None}
# The text of REPLACE and PREPEND is a whole header: a label, then a colon.
_HEADER = re.compile(r"[!-9;-~]+:.*")


def header_checks(variables: dict, config_dir: str) -> dict:
    """``{"table": ..., "main_cf": ...}``: the table for postfix_apply's ``maps`` (absent when there are no rules)
    and the main.cf parameter (removed when there are none). Bad rules are refused naming postfix_header_checks[N]."""
    rules = [_rule(index, rule) for index, rule in enumerate(variables.get(VARIABLE) or [])]
    return {
        "table": {
            "name": TABLE,
            "type": TABLE_TYPE,
            "entries": [{"pattern": pattern, "action": action} for pattern, action in rules],
            "state": "present" if rules else "absent",
        },
        "main_cf": {PARAMETER: f"{TABLE_TYPE}:{config_dir}/{TABLE}" if rules else None},
    }


def _rule(index: int, rule) -> tuple[str, str]:
    where = f"{VARIABLE}[{index}]"
    if not isinstance(rule, dict):
        raise variable_error(where, f"{rule!r} is not a mapping", "give {pattern, action}")
    pattern, action = rule.get("pattern"), rule.get("action")
    problem = pattern_problem(pattern, TABLE_TYPE)
    if problem:
        raise variable_error(f"{where}.pattern", f"{pattern!r} {problem}", "Postfix regexp form: /regex/ or /regex/i")
    problem = action_problem(action) or _action_problem(action)
    if problem:
        accepted = "one of " + ", ".join(ACTIONS) + " (REPLACE and PREPEND with a header, as 'REPLACE X-Host: relay')"
        raise variable_error(f"{where}.action", f"{action!r} {problem}", accepted)
    return pattern, action


def _action_problem(action: str) -> str | None:
    word, _space, text = action.partition(" ")
    takes_text = ACTIONS.get(word.upper(), "unknown")
    if takes_text == "unknown":
        return "is not an action the SMTP client's header checks take"
    text = text.strip()
    if takes_text is False and text:
        return f"takes no text after {word}"
    if takes_text is True and not _HEADER.fullmatch(text):
        return f"needs a header after {word} (a label, a colon, then the value)"
    return None
