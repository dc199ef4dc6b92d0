# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: one role variable read for the plan, and the error that names it."""

from __future__ import annotations

import re

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import has_unsafe_characters

_TIME = re.compile(r"[0-9]+[smhdw]?")


def variable_error(variable: str, problem: str, accepted: str = "") -> SmtpRelayError:
    return SmtpRelayError(f"{variable}: {problem}" + (f"; {accepted}" if accepted else ""), variable=variable)


def text_variable(variables: dict, name: str) -> str:
    """A one-line text variable, stripped; a line break or control character is refused naming it."""
    value = variables.get(name)
    if value is None:
        return ""
    value = str(value)
    if has_unsafe_characters(value):
        raise variable_error(name, f"{value!r} contains a line break or control character", "give one line of text")
    return value.strip()


def time_variable(variables: dict, name: str) -> str | None:
    value = text_variable(variables, name)
    if value and not _TIME.fullmatch(value):
        raise variable_error(
            name, f"{value!r} is not a Postfix time", "a number with s, m, h, d or w, for example 30s, 4h, 5d"
        )
    return value or None
