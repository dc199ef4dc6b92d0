# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: Postfix lookup-table files and their indexed builds."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._files import (
    move_atomically,
    path_problem,
    unlink_quietly,
    write_atomically,
)
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import has_unsafe_characters
from ansible_collections.smtp.relay.plugins.module_utils._postfix.pattern_tables import (
    PATTERN_TYPES,
    check_with_postfix,
    render_rules,
    validate_rules,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import (
    MASK,
    Planned,
    encode_text,
    printable,
    read_text,
)
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import (
    DEFAULT_CONFIG_DIR,
    PostconfRunner,
    lines_of,
    main_cf_exists,
    read_effective,
)

# Suffix postmap gives the indexed file; None: Postfix reads the source itself. hash and btree share .db.
INDEX_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb", "texthash": None}
# regexp and pcre tables (pattern_tables.py) are ordered and read as they are: no index either.
MAP_TYPES = (*INDEX_SUFFIX, *PATTERN_TYPES)
SECRET_MODE = 0o600
DEFAULT_MODE = 0o644
HEADER = "# Managed by Ansible (smtp.relay.postfix_map): local changes are overwritten.\n"

_WHITESPACE = re.compile(r"\s")


def index_path(path: str, map_type: str) -> str | None:
    suffix = INDEX_SUFFIX.get(map_type)
    return path + suffix if suffix else None


def map_reference(path: str, map_type: str) -> str:
    """What main.cf needs, e.g. ``hash:/etc/postfix/sasl_passwd``."""
    return f"{map_type}:{path}"


def validate_entries(entries: Mapping[str, object], secret: bool = False, field: str = "entries") -> dict[str, str]:
    """Refuse what postmap would misread; messages name the option (``field``) and the key, never a secret value."""
    if not isinstance(entries, Mapping):
        raise SmtpRelayError(f"{field} must be a mapping of key to value, got {type(entries).__name__}", field=field)
    result: dict[str, str] = {}
    folded: dict[str, str] = {}
    for key, value in entries.items():
        if not isinstance(key, str) or not key:
            raise SmtpRelayError(f"{field}: key {key!r} must be a non-empty string", key=str(key))
        if _WHITESPACE.search(key) or has_unsafe_characters(key) or key.startswith("#"):
            raise SmtpRelayError(
                f"{field}: key {key!r} contains whitespace or a control character, or starts with '#'; "
                "a lookup key is one word",
                key=key,
            )
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise SmtpRelayError(
                f"{field}.{key}: the value must be a string or a number, got {type(value).__name__}", key=key
            )
        text = str(value)
        shown = MASK if secret else repr(text)
        # postmap trims the value and would silently store a different password than the one given.
        if not text or has_unsafe_characters(text) or text != text.strip():
            raise SmtpRelayError(
                f"{field}.{key}: value {shown} is empty, has leading/trailing whitespace or contains a newline or "
                "control character; a lookup value is one non-empty line (inner spaces are allowed)",
                key=key,
            )
        # postmap folds keys to lower case: two keys differing only in case would become duplicates.
        other = folded.setdefault(key.lower(), key)
        if other != key:
            raise SmtpRelayError(
                f"{field}: keys {other!r} and {key!r} differ only in case; postmap folds them", key=key
            )
        result[key] = text
    return result


def render_map(entries: Mapping[str, str]) -> str:
    """Stable text: a header, then one ``key value`` line per entry in key order."""
    return HEADER + "".join(f"{key} {entries[key]}\n" for key in sorted(entries))


def parse_map(text: str) -> dict[str, str]:
    """Entries of a map source (comments and blank lines skipped; the first word is the key)."""
    result = {}
    for line in lines_of(text):
        if not line.strip() or line.lstrip().startswith("#") or line[0] in " \t":
            continue
        key, *value = line.split(None, 1)
        result[key] = value[0].strip() if value else ""
    return result


def masked_view(text: str | None, previous: Mapping[str, str] | None = None) -> str:
    """Keys only, values hidden; a value that differs from ``previous`` is marked, never shown."""
    if text is None:
        return ""
    lines = []
    for key, value in sorted(parse_map(text).items()):
        note = ""
        if previous is not None and previous.get(key) != value:
            note = " (changed)" if key in previous else " (new)"
        lines.append(f"{key} {MASK}{note}\n")
    return "".join(lines)


def is_stale(path: str, map_type: str) -> bool:
    """The indexed file is missing or older than its source (so Postfix would read old data)."""
    index = index_path(path, map_type)
    if index is None:
        return False
    try:
        return os.stat(index).st_mtime < os.stat(path).st_mtime
    except FileNotFoundError:
        return True


def resolve_type(runner: PostconfRunner, config_dir: str, map_type: str | None, field: str = "type") -> str:
    if map_type is None:
        map_type = read_effective(runner, config_dir, ["default_database_type"]).get("default_database_type", "hash")
    if map_type not in MAP_TYPES:
        raise SmtpRelayError(f"{field} {map_type!r} is not supported; use one of {', '.join(MAP_TYPES)}", type=map_type)
    return map_type


def check_path(field: str, value: str) -> str:
    """``value`` when the system can take it as a path (or a file name), else SmtpRelayError naming ``field``."""
    problem = path_problem(value)
    if problem:
        shown = value if len(value) <= 60 else value[:40] + "..." + value[-12:]
        raise SmtpRelayError(f"{field} {problem}: {shown!r}", field=field)
    return value


def resolve_path(name: str | None, path: str | None, config_dir: str, field: str = "name") -> str:
    """The table's source file: ``path``, else ``name`` (the option ``field``) under ``config_dir``."""
    check_path("config_dir", config_dir)
    if path:
        if not os.path.isabs(path):
            raise SmtpRelayError(f"path {path!r} must be absolute", path=path)
        return check_path("path", path)
    if (
        not isinstance(name, str)
        or not name
        or "/" in name
        or name in (".", "..")
        or _WHITESPACE.search(name)
        or has_unsafe_characters(name)
    ):
        raise SmtpRelayError(f"{field} {name!r} must be a plain file name under config_dir", field=field)
    return os.path.join(config_dir, check_path(field, name))


def _build(
    runner: PostconfRunner, config_dir: str, path: str, text: str, *, map_type: str, mode: int | None, owner
) -> None:
    """Write a hidden temporary source next to the target, index it, then rename index and source.

    postmap always rewrites the file it builds, so building in place would expose a half-built index
    to a running Postfix. The source is renamed last so that it is never newer than its index, and the
    index is given the mode and owner its source was given.
    """

    def index(tmp: str) -> None:
        tmp_index = index_path(tmp, map_type)
        if tmp_index is None:
            return
        try:
            if not main_cf_exists(config_dir):
                raise SmtpRelayError(
                    f"postmap needs {config_dir}/main.cf, which does not exist: configure Postfix first "
                    "(smtp.relay.postconf), or use type texthash",
                    config_dir=config_dir,
                )
            _out, err = runner.run("postmap", ["-c", config_dir, f"{map_type}:{tmp}"])
            warnings = [ln for ln in (err or "").splitlines() if "warning" in ln]
            if warnings:
                # postmap only warns about malformed lines; an index missing entries is a failure here.
                raise SmtpRelayError(f"postmap reported problems building {path}: {'; '.join(warnings)}", path=path)
            source = os.stat(tmp)
            move_atomically(
                tmp_index,
                index_path(path, map_type),
                mode=source.st_mode & 0o7777,
                uid=source.st_uid,
                gid=source.st_gid,
            )
        except BaseException:
            unlink_quietly(tmp_index)
            raise

    write_atomically(
        path,
        encode_text(text),
        mode=mode,
        uid=owner[0],
        gid=owner[1],
        default_mode=DEFAULT_MODE,
        before_replace=index,
    )


def _needs_fixing(path: str, map_type: str, mode: int, owner) -> bool:
    """Whether a secret map's files have another mode or owner than wanted."""
    for candidate in (path, index_path(path, map_type)):
        if candidate is None or not os.path.exists(candidate):
            continue
        st = os.stat(candidate)
        if st.st_mode & 0o7777 != mode or (owner[0] is not None and st.st_uid != owner[0]):
            return True
    return False


def _fix_identity(path: str, map_type: str, mode: int, owner) -> None:
    for candidate in (path, index_path(path, map_type)):
        if candidate is not None and os.path.exists(candidate):
            os.chmod(candidate, mode)
            if owner[0] is not None:
                os.chown(candidate, owner[0], owner[1])


def _predict_fresh(path: str, text: str, map_type: str | None, secret: bool, state: str) -> dict:
    """Check mode before Postfix is installed: the table will be created (with the usual default type)."""
    assumed = map_type is None
    map_type = map_type or "hash"
    present = state == "present"
    return {
        "changed": present,
        "path": path,
        "map": map_reference(path, map_type),
        "diff": {
            "before_header": f"{path} (absent)",
            "after_header": path,
            "before": "",
            "after": (masked_view(text) if secret else text) if present else "",
        },
        "warnings": ["Postfix is not installed yet: the table type is assumed to be " + map_type] if assumed else [],
    }


def _private(path: str) -> bool:
    """The table's file exists and others may not read it."""
    try:
        return not os.stat(path).st_mode & 0o004
    except OSError:
        return False


def _removed(path: str) -> list[str]:
    """The files state=absent removes: the source and every indexed file next to it."""
    return [path, *sorted({path + s for s in INDEX_SUFFIX.values() if s})]


def _remove(path: str) -> None:
    for candidate in _removed(path):
        unlink_quietly(candidate)


def plan_map(
    runner: PostconfRunner,
    *,
    entries: Mapping[str, object] | None = None,
    name: str | None = None,
    path: str | None = None,
    map_type: str | None = None,
    secret: bool = False,
    config_dir: str = DEFAULT_CONFIG_DIR,
    state: str = "present",
    check_mode: bool = False,
    where: str = "",
) -> Planned:
    """Every check of :func:`ensure_map`, writing nothing. ``where`` prefixes the table's own options in messages
    (``maps[0].`` for postfix_apply's first table)."""
    if state not in ("present", "absent"):
        raise SmtpRelayError(f"{where}state {state!r} is not present or absent", field=f"{where}state")
    path_given = bool(path)
    path = resolve_path(name, path, config_dir, field=f"{where}name")
    patterned = map_type in PATTERN_TYPES
    if state != "present":
        wanted = {}
    elif patterned:
        wanted = validate_rules([] if entries is None else entries, map_type, field=f"{where}entries")
    else:
        wanted = validate_entries({} if entries is None else entries, secret, field=f"{where}entries")
    text = render_rules(HEADER, wanted) if patterned else render_map(wanted)
    if check_mode and not runner.installed():
        return Planned(_predict_fresh(path, text, map_type, secret, state))
    map_type = resolve_type(runner, config_dir, map_type, field=f"{where}type")
    result = {"changed": False, "path": path, "map": map_reference(path, map_type)}
    try:
        current = read_text(path)
    except SmtpRelayError as e:  # a directory where the table should be
        option = "path" if path_given else f"{where}name"
        raise SmtpRelayError(f"{option}: {e.msg}", field=option) from None

    # A table others may not read (a credentials table written with secret=true) is shown as secret, whatever
    # this call says: removing or rewriting it must not print what it held.
    secret_shown = secret or _private(path)
    if state == "absent":
        result["changed"] = any(os.path.exists(p) for p in _removed(path))
        result["diff"] = {"before_header": path, "after_header": path, "before": "", "after": ""}
        if current is not None:
            result["diff"]["before"] = printable(masked_view(current) if secret_shown else current)
        if check_mode or not result["changed"]:
            return Planned(result)
        return Planned(result, lambda: _remove(path))

    if not os.path.isdir(os.path.dirname(path)):
        if path_given:
            raise SmtpRelayError(f"path: the directory of {path} does not exist", field="path", path=path)
        raise SmtpRelayError(f"config_dir {config_dir!r} is not a directory", field="config_dir", path=path)
    # A secret table is 0600 (and root's, when run as root); any other keeps its mode and owner.
    if secret:
        mode, owner = SECRET_MODE, ((0, 0) if os.geteuid() == 0 else (None, None))
    else:
        mode, owner = None, (None, None)
    content_changed = current != text
    stale = is_stale(path, map_type)
    identity_wrong = secret and _needs_fixing(path, map_type, mode, owner)
    if patterned:
        # Unchanged too: the same lines may be fine as regexp and unreadable as pcre (postfix-pcre missing).
        check_with_postfix(runner, config_dir, text, map_type, wanted, where=where)

    before_header = path if current is not None else f"{path} (absent)"
    after_header = path + (" (index rebuilt)" if stale and not content_changed else "")
    if secret_shown:
        before, after = masked_view(current), masked_view(text, parse_map(current or ""))
    else:
        before, after = current or "", text
    result["diff"] = {
        "before_header": before_header,
        "after_header": after_header,
        "before": printable(before),
        "after": printable(after),
    }
    result["changed"] = content_changed or stale or identity_wrong
    if check_mode or not result["changed"]:
        return Planned(result)

    def write() -> None:
        if content_changed or stale:
            _build(runner, config_dir, path, text, map_type=map_type, mode=mode, owner=owner)
        if identity_wrong:
            _fix_identity(path, map_type, mode, owner)

    return Planned(result, write)


def ensure_map(runner: PostconfRunner, **options) -> dict:
    """Bring one lookup table to the wanted content; rebuild its index only when it changed or is stale.

    ``options`` are those of :func:`plan_map`. Returns ``changed``, ``path``, ``map`` (``type:path``) and ``diff``
    (values masked when secret). Nothing is written when a check fails.
    """
    planned = plan_map(runner, **options)
    if planned.write is not None:
        planned.write()
    return planned.result
