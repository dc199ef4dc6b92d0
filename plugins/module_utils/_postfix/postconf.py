# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: read, plan, stage, validate and write main.cf through the postconf binary."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL, WARN
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._files import write_atomically
from ansible_collections.smtp.relay.plugins.module_utils._postfix.staging import check_table_types, validate_staged
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import (
    DEFAULT_CONFIG_DIR,
    PostconfRunner,
    lines_of,
)
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import has_unsafe_characters
from ansible_collections.smtp.relay.plugins.module_utils._rules import parameter_checks

MASK = "********"

# Postfix reads these only when master(8) starts: a reload keeps the old value ("postfix stop; postfix
# start" is documented for inet_interfaces/inet_protocols; the directories and identities are fixed at start).
RESTART_PARAMETERS = frozenset(
    {
        "inet_interfaces",
        "inet_protocols",
        "queue_directory",
        "data_directory",
        "daemon_directory",
        "command_directory",
        "process_id_directory",
        "mail_owner",
        "setgid_group",
        "import_environment",
    }
)

# Names that say their value is a credential. Map references (``*_maps``) and file names (``*_file``)
# name where a secret lives, not the secret, and stay readable.
_SECRET_NAME = re.compile(r"(pass(word|wd|phrase)?|secret|token|api_?key|credential)", re.IGNORECASE)
_NOT_SECRET_SUFFIX = ("_maps", "_file", "_files", "_path", "_directory", "_options", "_type")

# A parameter name: what Postfix accepts on the left of '=' and what we agree to write (whole string).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
# Postfix's main.cf grammar is ASCII: lines end at "\n" only, and only these characters are white space.
_SPACE = " \t\r\n\v\f"
_PARAM_LINE = re.compile(r"([^ \t\r\v\f=#]+)[ \t\r\v\f]*=(.*)", re.DOTALL)
_BOOL_VALUES = ("yes", "no")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name)) and not name.endswith(_NOT_SECRET_SUFFIX)


# ---------------------------------------------------------------------------------------------------
# main.cf text model


@dataclass
class _Block:
    """One parameter (first line plus continuation lines) or one run of other lines."""

    name: str | None
    lines: list[str] = field(default_factory=list)

    @property
    def value(self) -> str:
        # Postfix joins a logical line's pieces with one space and ignores comments between them.
        first = _PARAM_LINE.fullmatch(self.lines[0].rstrip("\n")).group(2).strip(_SPACE)
        rest = [ln.strip(_SPACE) for ln in self.lines[1:] if not _is_other(ln)]
        return " ".join(x for x in [first, *rest] if x) if rest else first


def _is_other(line: str) -> bool:
    stripped = line.strip(_SPACE)
    return not stripped or stripped.startswith("#")


def parse_main_cf(text: str) -> list[_Block]:
    """Split main.cf into blocks, keeping every byte so that rendering unchanged blocks is lossless."""
    blocks: list[_Block] = []
    pending: list[str] = []  # comments/blank lines that may still sit inside a multi-line value
    last_param: _Block | None = None
    for line in lines_of(text, keepends=True):
        if _is_other(line):
            pending.append(line)
            continue
        if line[0] in _SPACE and last_param is not None:
            last_param.lines.extend(pending)
            pending = []
            last_param.lines.append(line)
            continue
        if pending:
            blocks.append(_Block(None, pending))
            pending = []
        match = _PARAM_LINE.fullmatch(line.rstrip("\n"))
        if match and line[0] not in _SPACE:
            last_param = _Block(match.group(1), [line])
            blocks.append(last_param)
        else:
            # Lines postconf would reject are kept as they are: staging reports them.
            blocks.append(_Block(None, [line]))
            last_param = None
    if pending:
        blocks.append(_Block(None, pending))
    return blocks


def render_main_cf(blocks: Iterable[_Block]) -> str:
    return "".join(line for block in blocks for line in block.lines)


def parameters(text: str) -> dict[str, str]:
    """The values main.cf sets, the last occurrence winning as in Postfix."""
    return {b.name: b.value for b in parse_main_cf(text) if b.name}


def _format_line(name: str, value: str) -> str:
    return f"{name} = {value}\n" if value else f"{name} =\n"


# ---------------------------------------------------------------------------------------------------
# settings: normalization, validation, plan


def _shown(name: str, value: object) -> str:
    return MASK if is_secret_name(name) else repr(value)


def normalize_value(name: str, value: object) -> str | None:
    """str/int as text, bool as yes/no, list joined with ", "; None means "remove"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        parts = [normalize_value(name, item) for item in value]
        if any(p is None for p in parts) or any(isinstance(i, (list, tuple, dict)) for i in value):
            raise SmtpRelayError(
                f"settings.{name}: list items must be strings, numbers or booleans, got {_shown(name, value)}",
                parameter=name,
            )
        text = ", ".join(parts)
    elif isinstance(value, str):
        text = value
    else:
        raise SmtpRelayError(
            f"settings.{name}: expected a string, number, boolean, list or null, got {type(value).__name__}",
            parameter=name,
        )
    if has_unsafe_characters(text):
        raise SmtpRelayError(
            f"settings.{name}: value {_shown(name, text)} contains a line break or control character; "
            "main.cf values must be one line of printable text",
            parameter=name,
        )
    return text.strip(_SPACE)


def check_name(name: object) -> str:
    """A parameter name Postfix reads exactly as given, or SmtpRelayError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SmtpRelayError(
            f"settings: {name!r} is not a Postfix parameter name (ASCII letters, digits, '_', '.', '-')",
            parameter=str(name),
        )
    return name


def normalize_settings(settings: Mapping[str, object]) -> dict[str, str | None]:
    if not isinstance(settings, Mapping):
        raise SmtpRelayError(f"settings must be a mapping of parameter name to value, got {type(settings).__name__}")
    return {check_name(name): normalize_value(name, value) for name, value in settings.items()}


def check_parameters(
    settings: Mapping[str, str | None], defaults: Mapping[str, str] | None, allow_unknown: bool = False
) -> list[str]:
    """The rule engine's name and boolean rules over the parameters this call sets; warnings are returned.

    ``defaults`` is ``postconf -d`` (None before Postfix is installed: the rules' built-in lists are used).
    """
    given = {n: v for n, v in settings.items() if v is not None}
    ctx: dict = {"configured": sorted(given)}
    if defaults is not None:
        ctx["known_parameters"] = sorted(defaults)
        ctx["boolean_parameters"] = sorted(n for n, v in defaults.items() if v in _BOOL_VALUES)
    fails, warnings = [], []
    for entry in parameter_checks(given, ctx):
        if entry["status"] == FAIL and not (allow_unknown and entry["id"] == "params.mistyped"):
            fails.append(entry)
        elif entry["status"] == WARN and entry["id"] != "params.unknown":
            warnings.append(f"{entry['message']} ({entry['id']}): {entry['hint']}")
    if fails:
        raise SmtpRelayError(
            "; ".join(f"settings.{c['parameter']}: {c['message']} ({c['id']})" for c in fails),
            rule_ids=[c["id"] for c in fails],
            unknown_parameters=[c["parameter"] for c in fails if c["id"] == "params.mistyped"],
        )
    return warnings


def plan_changes(current_text: str, settings: Mapping[str, object]) -> tuple[str, list[str], bool]:
    """Pure: the new main.cf text, the names whose value changes, and whether master must restart.

    A changed parameter is rewritten where it first appears (later duplicates go); a new one is
    appended; a removed one loses all its lines. Everything else is kept byte for byte.
    """
    wanted = normalize_settings(settings)
    blocks = parse_main_cf(current_text)
    occurrences: dict[str, list[_Block]] = {}
    for block in blocks:
        if block.name:
            occurrences.setdefault(block.name, []).append(block)

    changed: list[str] = []
    drop: set[int] = set()
    appended: list[_Block] = []
    for name, value in wanted.items():
        found = occurrences.get(name, [])
        if value is None:
            if found:
                changed.append(name)
                drop.update(id(b) for b in found)
            continue
        if not found:
            changed.append(name)
            appended.append(_Block(name, [_format_line(name, value)]))
            continue
        first, *duplicates = found
        if duplicates or found[-1].value != value or first.value != value:
            changed.append(name)
            first.lines = [_format_line(name, value)]
            drop.update(id(b) for b in duplicates)

    kept = [b for b in blocks if id(b) not in drop]
    text = render_main_cf(kept)
    if appended:
        if text and not text.endswith("\n"):
            text += "\n"
        text += render_main_cf(appended)
    return text, changed, any(name in RESTART_PARAMETERS for name in changed)


def mask_main_cf(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """main.cf text with the values of secret-named parameters (and any given secret) hidden."""
    out = []
    for block in parse_main_cf(text):
        if block.name and is_secret_name(block.name):
            out.append(_format_line(block.name, MASK))
        else:
            out.extend(block.lines)
    return mask_text("".join(out), extra_secrets)


def mask_text(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


# ---------------------------------------------------------------------------------------------------
# files


def read_text(path: str) -> str | None:
    """A Postfix file's text; bytes that are not UTF-8 survive a read and write unchanged (surrogateescape)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise SmtpRelayError(f"{path} is a directory, not a file", path=path) from None


def encode_text(text: str) -> bytes:
    """The bytes of a Postfix file's text: what :func:`read_text` read comes back byte for byte."""
    return text.encode("utf-8", "surrogateescape")


def printable(text: str) -> str:
    """Text safe to return to Ansible (JSON): undecodable bytes read with surrogateescape become U+FFFD."""
    return encode_text(text).decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------------------
# validation and apply


@dataclass
class Planned:
    """A step checked and planned with nothing written: its result, and the write that makes it so (None: none)."""

    result: dict
    write: Callable[[], None] | None = None


def plan_main_cf(
    runner: PostconfRunner,
    settings: Mapping[str, object],
    *,
    config_dir: str = DEFAULT_CONFIG_DIR,
    allow_unknown: bool = False,
    check_mode: bool = False,
) -> Planned:
    """Every check of :func:`apply`, the staged validation with postconf included, writing nothing."""
    wanted = normalize_settings(settings)
    secrets = [v for n, v in wanted.items() if v and is_secret_name(n)]

    def mask(text: str) -> str:
        return mask_text(text, secrets)

    path = os.path.join(config_dir, "main.cf")
    if check_mode and not runner.installed():
        # Predicting for a host where Postfix is still to be installed: nothing to read or validate with.
        current = None
        warnings = check_parameters(wanted, None, allow_unknown)
        new_text, changed_names, restart = plan_changes("", wanted)
        warnings.append("Postfix is not installed yet: the planned main.cf was not validated (check mode)")
    else:
        if not os.path.isdir(config_dir):
            raise SmtpRelayError(f"config_dir {config_dir!r} is not a directory", config_dir=config_dir)
        warnings = check_parameters(wanted, runner.defaults(), allow_unknown)
        current = read_text(path)
        new_text, changed_names, restart = plan_changes(current or "", wanted)
        introduced = [n for n, v in wanted.items() if v is not None]
        warnings += validate_staged(
            runner, config_dir, new_text, introduced=introduced, allow_unknown=allow_unknown, mask=mask
        )
        check_table_types(runner, config_dir, wanted, changed_names)

    changed = bool(changed_names) or current is None
    result = {
        "changed": changed,
        "restart_required": restart,
        "changed_parameters": sorted(changed_names),
        "diff": {
            "before_header": path if current is not None else f"{path} (absent: Postfix not configured yet)",
            "after_header": path,
            "before": printable(mask_main_cf(current or "", secrets)),
            "after": printable(mask_main_cf(new_text, secrets)),
        },
        "warnings": warnings,
    }
    if not changed or check_mode:
        return Planned(result)
    return Planned(result, lambda: write_atomically(path, encode_text(new_text)))


def apply(runner: PostconfRunner, settings: Mapping[str, object], **options) -> dict:
    """Plan, validate in a staging copy, then (unless check mode) replace main.cf atomically.

    ``options`` are those of :func:`plan_main_cf`. Returns ``changed``, ``diff``, ``restart_required``,
    ``changed_parameters`` and ``warnings`` (messages for the module to emit). Nothing is written when anything fails.
    """
    planned = plan_main_cf(runner, settings, **options)
    if planned.write is not None:
        planned.write()
    return planned.result
