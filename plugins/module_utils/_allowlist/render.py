# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: allowlist request renderers (mail, Markdown, JSON, YAML, CSV; the fleet files).

Pure functions of the request, byte-stable: no timestamps, fixed field order. Every CSV cell goes through the
shared formula neutraliser ``_checks.csv_row``.
"""

from __future__ import annotations

import json
import re

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.model import (
    DEFAULT_SUBJECT,
    FIELD_NAMES,
    FIELDS,
    FORMATS,
    OPTIONAL_FIELDS,
    refuse,
    request_row,
)
from ansible_collections.smtp.relay.plugins.module_utils._checks import csv_row
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import UNSAFE_CHARACTERS


def _value_text(value, separator=", ") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return separator.join(str(v) for v in value)
    return str(value)


def _is_set(value) -> bool:
    """Whether an optional field says something (0 does: a volume of none per day; false does not)."""
    return value is not None and value is not False and value not in ("", [])


def _shown_fields(request):
    """People-facing renderings: every form field, optional ones only when set."""
    for name, label in FIELDS:
        value = request[name]
        if name in OPTIONAL_FIELDS and not _is_set(value):
            continue
        yield name, label, value


def mail_body(request) -> str:
    request = request_row(request)
    rows = [(label, _value_text(value) or "none") for _name, label, value in _shown_fields(request)]
    width = max(len(label) for label, _v in rows) + 1
    where = f"the relay {request['relay']}" if request["relay"] else "your relay"
    lines = [
        "Hello,",
        "",
        f"please allow the following server to send mail through {where}.",
        "",
        *(f"{label + ':':<{width}} {value}" for label, value in rows),
        "",
        f"Questions about this server go to {request['contact']}.",
        "",
        "Thank you,",
        request["team"] or "",
    ]
    return "\n".join(lines) + "\n"


def render_mail(request, subject: str = DEFAULT_SUBJECT) -> str:
    return f"Subject: {subject}\n\n{mail_body(request)}"


_MD_SPECIAL = re.compile(r"([\\|*_`\[\]<>])")


def _md(value) -> str:
    """Markdown for a value that stays in its table cell or heading, in every Markdown rendering.

    Markup characters are escaped; a line break or control character (it would end the row or heading and turn the
    rest into free text) is written as a visible escape, ``\\n``. Neutralised rather than refused, as the CSV writer
    neutralises formulas: the fleet file still lists every host, and the reader sees what the value held.
    """
    return UNSAFE_CHARACTERS.sub(_visible, _MD_SPECIAL.sub(r"\\\1", _value_text(value)))


def _visible(match) -> str:
    return repr(match.group())[1:-1]  # "\n" -> \n, "\x1b" -> \x1b, "\u2028" -> \u2028


def render_markdown(request) -> str:
    request = request_row(request)
    lines = [f"# Allowlist request: {_md(request['fqdn'])}", "", "| Field | Value |", "|---|---|"]
    lines += [f"| {label} | {_md(value) or 'none'} |" for _name, label, value in _shown_fields(request)]
    return "\n".join(lines) + "\n"


def render_json(request) -> str:
    return json.dumps(request_row(request), indent=2, ensure_ascii=False) + "\n"


def _yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    # A JSON string is a valid YAML double-quoted scalar; input rules keep line separators out.
    return json.dumps(str(value), ensure_ascii=False)


def render_yaml(request) -> str:
    """Written here rather than by PyYAML: hosts may lack it, and its output varies between versions."""
    lines = ["---"]
    for name, value in request_row(request).items():
        if isinstance(value, list):
            lines.append(f"{name}:" + ("" if value else " []"))
            lines += [f"  - {_yaml_scalar(v)}" for v in value]
        else:
            lines.append(f"{name}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


def render_csv(requests) -> str:
    """Header plus one row per request (sorted by FQDN); lists are space-separated.

    Every line goes through ``csv_row``: a value starting with = + - @ tab or CR gets a leading single quote, so
    that a spreadsheet opening the fleet file shows it instead of running it as a formula.
    """
    rows = [csv_row(FIELD_NAMES)]
    rows += [csv_row(_value_text(request[name], " ") for name in FIELD_NAMES) for request in sort_requests(requests)]
    return "".join(rows)


def sort_requests(requests) -> list[dict]:
    if isinstance(requests, dict):
        requests = [requests]
    if not isinstance(requests, (list, tuple)):
        raise SmtpRelayError(f"expected a list of allowlist requests, got {type(requests).__name__}",
                             field="requests")  # fmt: skip
    rows = [request_row(r) for r in requests]
    seen = set()
    for row in rows:
        if row["fqdn"] in seen:
            raise SmtpRelayError(f"two allowlist requests for the same FQDN {row['fqdn']}: one row per host",
                                 field="fqdn")  # fmt: skip
        seen.add(row["fqdn"])
    return sorted(rows, key=lambda r: r["fqdn"])


def render_fleet_markdown(requests, title: str = "Allowlist request") -> str:
    """One table, one row per host sorted by FQDN; optional columns only when some host has a value."""
    rows = sort_requests(requests)
    columns = [(n, label) for n, label in FIELDS if n not in OPTIONAL_FIELDS or any(_is_set(r[n]) for r in rows)]
    lines = [f"# {_md(title)}", "", "| " + " | ".join(label for _n, label in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(_md(r[n]) for n, _label in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def render(request, fmt: str, subject: str = DEFAULT_SUBJECT) -> str:
    if fmt == "mail":
        return render_mail(request, subject)
    if fmt == "markdown":
        return render_markdown(request)
    if fmt == "json":
        return render_json(request)
    if fmt == "yaml":
        return render_yaml(request)
    if fmt == "csv":
        return render_csv([request])
    raise refuse("format", fmt, "expected one of " + ", ".join(FORMATS))
