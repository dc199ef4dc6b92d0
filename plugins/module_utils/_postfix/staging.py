# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: what Postfix itself says of a configuration before it is put in place.

A staged copy of the configuration (:func:`staged_config`) is judged by ``postconf -n`` (:func:`validate_staged`);
the lookup-table types main.cf names are compared with ``postconf -m`` (:func:`check_table_types`), because
``postconf -n`` does not open tables and a type this Postfix lacks only shows when mail is deferred.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner

# What postconf reads beside main.cf, copied into the staging directory.
STAGED_FILES = ("master.cf", "dynamicmaps.cf", "dynamicmaps.cf.d")
# Seconds in the past the staged main.cf is dated (see staged_config).
STAGED_AGE = 60
_UNUSED = re.compile(r"unused parameter: (?:-o )?([^\s=]+)=")

# Table types that come in a package of their own, named alike on Debian and EL (postconf -m lists them once
# installed). Any other type this Postfix lacks is a misspelling.
PLUGIN_PACKAGES = {
    name: f"postfix-{name}" for name in ("pcre", "lmdb", "cdb", "ldap", "mysql", "pgsql", "sqlite", "mongodb")
}
# Parameters whose value is a list of lookup tables (``type:name``); the others may hold "inet:host:port" and the
# like, which are not tables.
_TABLE_PARAMETER = re.compile(r".*(_maps|_checks)|alias_database")
_TABLE_TYPE = re.compile(r"([a-z][a-z0-9_]*):")
_BRACES = re.compile(r"\{[^{}]*\}")


@contextlib.contextmanager
def staged_config(config_dir: str, main_cf_text: str):
    """A temporary configuration directory holding ``main_cf_text`` and the files Postfix reads beside main.cf;
    removed afterwards, whatever happens."""
    staging = tempfile.mkdtemp(prefix="smtp-relay-postconf-")
    try:
        # master.cf: its services give meaning to parameters such as relay_destination_rate_delay.
        # dynamicmaps.cf: the map types of plug-in packages (pcre, lmdb...).
        for name in STAGED_FILES:
            source = os.path.join(config_dir, name)
            if os.path.isdir(source):
                shutil.copytree(source, os.path.join(staging, name), symlinks=True)
            elif os.path.exists(source):
                shutil.copy2(source, os.path.join(staging, name))
        with open(os.path.join(staging, "main.cf"), "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(main_cf_text)
        # Postfix lets a configuration file written within the last second or so "cool down" before reading it
        # (it pauses until the file is older): a staged copy dated now cost two seconds per host on every run.
        cooled = time.time() - STAGED_AGE
        os.utime(os.path.join(staging, "main.cf"), (cooled, cooled))
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def validate_staged(
    runner: PostconfRunner,
    config_dir: str,
    new_text: str,
    *,
    introduced: Iterable[str],
    allow_unknown: bool,
    mask: Callable[[str], str],
) -> list[str]:
    """Run ``postconf -n`` over a copy of the configuration holding ``new_text``; return warnings.

    postconf exits 0 on a misspelt name and only warns "unused parameter": a name this call sets
    that Postfix would not use is an error (unless allowed); one that was already there is a warning.
    """
    with staged_config(config_dir, new_text) as staging:
        rc, _out, err = runner.run_unchecked("postconf", ["-n", "-c", staging])
    err = mask((err or "").replace(staging, config_dir))
    if rc != 0:
        raise SmtpRelayError(
            f"postconf refused the new main.cf, {config_dir}/main.cf is left unchanged: {err.strip()}",
            rc=rc,
            stderr=err.strip(),
        )

    unused = sorted({m.group(1) for m in _UNUSED.finditer(err)})
    introduced = set(introduced)
    refused = [n for n in unused if n in introduced]
    if refused and not allow_unknown:
        shown = ", ".join(refused)
        raise SmtpRelayError(
            f"settings: unknown Postfix parameter(s): {shown}. Postfix would ignore them; fix the name, or set "
            "allow_unknown=true for a user-defined parameter that is referenced as $name elsewhere",
            unknown_parameters=refused,
        )
    warnings = [f"{config_dir}/main.cf sets {n}, which Postfix does not use" for n in unused if n not in introduced]
    for line in err.splitlines():
        if "warning:" in line and "unused parameter" not in line and "master.cf: No such file" not in line:
            warnings.append(line.strip())
    return warnings


def table_types(name: str, value: str | None) -> list[str]:
    """The lookup-table types a main.cf parameter names (``proxy:hash:/x`` names proxy and hash); none for a
    parameter that does not hold tables."""
    if not value or not _TABLE_PARAMETER.fullmatch(name):
        return []
    found: list[str] = []
    for token in re.split(r"[\s,]+", _BRACES.sub(" ", value)):
        rest = token
        while match := _TABLE_TYPE.match(rest):
            found.append(match.group(1))
            rest = rest[match.end() :]
    return found


def check_table_types(
    runner: PostconfRunner, config_dir: str, settings: Mapping[str, str | None], changed: Iterable[str]
) -> None:
    """Refuse a changed parameter that names a table type this Postfix does not have (``postconf -m``): Postfix
    would start and defer every mail with "unsupported dictionary type". Unchanged parameters are not asked about,
    so that a run that changes nothing costs no extra command."""
    wanted = {name: types for name in changed if (types := table_types(name, settings.get(name)))}
    if not wanted:
        return
    # Staged: postconf refuses to run where the package left no main.cf (the first run on a host).
    with staged_config(config_dir, "") as staging:
        available = set(runner.postconf(["-m", "-c", staging])[0].split())
    for name, types in sorted(wanted.items()):
        for missing in [t for t in types if t not in available]:
            if missing in PLUGIN_PACKAGES:
                fix = f"install {PLUGIN_PACKAGES[missing]} (the package of that table type on Debian and EL) first"
            else:
                fix = f"this Postfix has: {', '.join(sorted(available))}"
            raise SmtpRelayError(
                f"settings.{name}: table type {missing!r} is not available in this Postfix (postconf -m): {fix}",
                parameter=name,
                table_type=missing,
            )
