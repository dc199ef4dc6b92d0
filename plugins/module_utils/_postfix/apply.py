# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: apply a whole plan of the postfix role on the host in one module execution.

Round trips are what a fleet run costs, so the packages check, both maps, the mail name, main.cf and the
service are handled in one call (an empty main.cf is created first where the package left none); package
installation (which needs the platform's package manager and its retries) is left to the role and only happens
when this call reports packages missing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Mapping

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._files import exclusive_lock, write_atomically
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import check_path, index_path, plan_map
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import (
    Planned,
    encode_text,
    plan_main_cf,
    printable,
    read_text,
)
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import has_unsafe_characters, is_hostname
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import DEFAULT_CONFIG_DIR, PostconfRunner

SYSTEMD_RUNTIME = "/run/systemd/system"
LOCK_TIMEOUT = 300.0


def missing_packages(runner: PostconfRunner, packages: list[str]) -> list[str]:
    """Packages not installed, asked of dpkg or rpm in one command; all of them when neither is there."""
    if not packages:
        return []
    try:
        rc, out, _err = runner.run_unchecked("dpkg-query", ["-W", "-f=${Package} ${db:Status-Abbrev}\\n", *packages])
    except SmtpRelayError:
        try:
            return [p for p in packages if runner.run_unchecked("rpm", ["-q", "--quiet", p])[0] != 0]
        except SmtpRelayError:
            return list(packages)
    del rc  # dpkg-query exits 1 when one package is unknown; the listing says which are installed
    installed = {line.split()[0] for line in out.splitlines() if line.split()[1:2] == ["ii"]}
    return [p for p in packages if p not in installed]


class Service:
    """The Postfix service, through systemd when the host runs it, else Postfix's own commands."""

    def __init__(self, runner: PostconfRunner, name: str, systemd: bool | None = None):
        self.runner, self.name = runner, name
        self.systemd = os.path.isdir(SYSTEMD_RUNTIME) if systemd is None else systemd

    def _ok(self, binary: str, args: list[str]) -> bool:
        try:
            return self.runner.run_unchecked(binary, args)[0] == 0
        except SmtpRelayError:
            return False

    def state(self) -> dict:
        if self.systemd:
            return {
                "active": self._ok("systemctl", ["is-active", "--quiet", self.name]),
                "enabled": self._ok("systemctl", ["is-enabled", "--quiet", self.name]),
            }
        return {"active": self._ok("postfix", ["status"]), "enabled": True}

    def do(self, action: str) -> None:
        if self.systemd:
            self.runner.run("systemctl", [action, self.name])
        elif action == "restart":
            self.runner.run_unchecked("postfix", ["stop"])
            self.runner.run("postfix", ["start"])
        elif action != "enable":
            self.runner.run("postfix", [action])


def apply_plan(
    runner: PostconfRunner,
    *,
    main_cf: dict,
    maps: list[dict] = (),
    secret_maps: list[dict] = (),
    map_type: str | None = None,
    mailname_file: str | None = None,
    mailname: str | None = None,
    alias_databases: list[str] = (),
    service: str | None = "postfix",
    packages: list[str] = (),
    config_dir: str = DEFAULT_CONFIG_DIR,
    check_mode: bool = False,
    systemd: bool | None = None,
) -> dict:
    """Maps, mail name, main.cf, then the service; returns changed, changed_parts, diff (a list) and more.

    When ``packages`` are missing nothing is touched and ``missing_packages`` says which (the caller installs
    them and calls again without ``packages``).
    """
    missing = missing_packages(runner, list(packages))
    result: dict = {"changed": False, "changed_parts": [], "diff": [], "missing_packages": missing, "warnings": []}
    if missing:
        return result

    check_path("config_dir", config_dir)
    with one_run_at_a_time(config_dir, check_mode):
        # Every step is checked and planned before the first write, so that a refusal leaves the host as it was:
        # main.cf too, postconf's staged validation included (postconf -n does not open the tables, so it judges
        # the same main.cf before they are written as after).
        steps = _plan_tables(runner, {"maps": maps, "secret_maps": secret_maps}, map_type, config_dir, check_mode)
        if mailname is not None:
            checked = _checked_mailname(mailname)
            if mailname_file:
                steps.append((mailname_file, _plan_mailname(mailname_file, checked, check_mode)))
        steps.extend(_plan_alias_databases(runner, alias_databases, config_dir, check_mode))
        configured = plan_main_cf(runner, main_cf, config_dir=config_dir, check_mode=check_mode)
        steps.append(("main.cf", configured))

        # What can still fail from here is the host, not the input: postmap building an index, a full disk, a
        # service that does not start. The run then fails saying what failed; the files written before stay
        # written, each one whole (tables first, so that main.cf never names a table not built yet), and the ones
        # after, main.cf last, are as they were: Postfix runs on the old main.cf with the new tables until the next
        # run, which compares each file with what is there and finishes the job.
        if not check_mode:
            _main_cf_present(config_dir)
        for part, planned in steps:
            if planned.write is not None:
                planned.write()
            result["warnings"].extend(planned.result.pop("warnings", []))
            if planned.result["changed"]:
                result["changed_parts"].append(part)
                result["diff"].append(planned.result["diff"])
        result["main_cf"] = {k: configured.result[k] for k in ("changed_parameters", "restart_required")}

        if service:
            # Postfix's local delivery keeps an alias database it failed to open until the process exits: a rebuilt
            # database needs a reload as much as a changed main.cf does.
            aliases_rebuilt = any(part.startswith("aliases ") for part in result["changed_parts"])
            result["service"] = _service(
                Service(runner, service, systemd),
                {**configured.result, "changed": configured.result["changed"] or aliases_rebuilt},
                check_mode,
                installed=runner.installed(),
            )
            result["changed_parts"].extend(f"service {action}" for action in result["service"]["actions"])
    result["changed"] = bool(result["changed_parts"])
    return result


TABLE_KEYS = ("name", "entries", "state", "type")


def _plan_tables(runner, given: dict, map_type, config_dir, check_mode) -> list[tuple[str, Planned]]:
    """(table name, planned table) for every table of ``maps`` and ``secret_maps`` (``given``), each table's options
    named in messages as ``maps[0].name``."""
    steps: list[tuple[str, Planned]] = []
    seen: dict[str, str] = {}
    for option, tables in given.items():
        secret = option == "secret_maps"
        if not isinstance(tables, (list, tuple)):
            raise SmtpRelayError(f"{option} must be a list of tables, got {type(tables).__name__}", field=option)
        for index, table in enumerate(tables):
            where = f"{option}[{index}]"
            _check_table(where, table)
            planned = plan_map(
                runner,
                entries=table.get("entries") or {},
                name=table["name"],
                # A table's own type (regexp header checks beside the host's hash tables) before the call's.
                map_type=table.get("type") or map_type,
                secret=secret,
                config_dir=config_dir,
                state=table.get("state") or "present",
                check_mode=check_mode,
                where=f"{where}.",
            )
            # Both would be written, the second over the first: which one the host ends with is not for us to guess.
            path = planned.result["path"]
            if path in seen:
                raise SmtpRelayError(f"{where}.name: {seen[path]} is the same table; give each table once", field=where)
            seen[path] = where
            steps.append((table["name"], planned))
    return steps


ALIAS_TYPES = ("hash", "btree", "lmdb", "cdb")


def _plan_alias_databases(runner, references, config_dir: str, check_mode: bool) -> list[tuple[str, Planned]]:
    """Build each alias database (``hash:/etc/aliases``) that is missing or older than its source, as newaliases
    would: Debian's "No configuration" install leaves /etc/aliases without its .db, and a satellite's local
    delivery then defers every mail ("alias database unavailable")."""
    if not isinstance(references, (list, tuple)):
        raise SmtpRelayError("alias_databases must be a list such as [hash:/etc/aliases]", field="alias_databases")
    steps = []
    for index, reference in enumerate(references):
        where = f"alias_databases[{index}]"
        map_type, _sep, path = str(reference).partition(":")
        if map_type not in ALIAS_TYPES or not os.path.isabs(path) or has_unsafe_characters(path):
            raise SmtpRelayError(
                f"{where}: {reference!r} is not TYPE:/absolute/path with TYPE one of {', '.join(ALIAS_TYPES)}",
                field=where,
            )
        check_path(where, path)
        indexed = index_path(path, map_type)
        if not os.path.isfile(path):
            continue  # nothing to build from: Postfix says so itself, as it would without the role
        stale = not os.path.exists(indexed) or os.path.getmtime(indexed) < os.path.getmtime(path)
        diff = {"before_header": indexed, "after_header": indexed, "before": "", "after": f"built from {path}\n"}
        result = {"changed": stale, "diff": diff}
        if not stale or check_mode:
            steps.append((f"aliases {reference}", Planned(result)))
            continue
        steps.append(
            (
                f"aliases {reference}",
                Planned(result, lambda r=reference: runner.run("postalias", ["-c", config_dir, r])),
            )
        )
    return steps


def _check_table(where: str, table) -> None:
    if not isinstance(table, Mapping):
        raise SmtpRelayError(
            f"{where} must be a mapping of {', '.join(TABLE_KEYS)}, got {type(table).__name__}", field=where
        )
    unknown = sorted(str(k) for k in table if k not in TABLE_KEYS)
    if unknown:
        raise SmtpRelayError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; a table has {', '.join(TABLE_KEYS)}", field=where
        )
    if "name" not in table:
        raise SmtpRelayError(f"{where}.name is required: the table's file name under config_dir", field=where)


def _checked_mailname(mailname) -> str:
    """One host name, as /etc/mailname holds (a final newline is allowed, and written anyway)."""
    name = mailname.rstrip("\n") if isinstance(mailname, str) else mailname
    if not isinstance(name, str) or not is_hostname(name):
        raise SmtpRelayError(
            f"mailname {mailname!r} is not one host name; the mail name file holds one, such as example.org",
            field="mailname",
        )
    return name


def _plan_mailname(path: str, name: str, check_mode: bool) -> Planned:
    check_path("mailname_file", path)
    if not os.path.isabs(path) or not os.path.isdir(os.path.dirname(path)):
        raise SmtpRelayError(
            f"mailname_file {path!r} must be an absolute path in a directory that exists", field="mailname_file"
        )
    try:
        current = read_text(path)
    except SmtpRelayError as e:
        raise SmtpRelayError(f"mailname_file: {e.msg}", field="mailname_file") from None
    wanted = name + "\n"
    diff = {"before_header": path, "after_header": path, "before": printable(current or ""), "after": wanted}
    result = {"changed": current != wanted, "diff": diff}
    if check_mode or current == wanted:
        return Planned(result)
    return Planned(result, lambda: write_atomically(path, encode_text(wanted)))


@contextlib.contextmanager
def one_run_at_a_time(config_dir: str, check_mode: bool):
    """Two runs applying to one host (two operators, cron and a pipeline) take turns: without it the host could
    end with one run's main.cf and the other's maps. Check mode writes nothing and does not wait."""
    if check_mode:
        yield
        return
    try:
        with exclusive_lock(lock_name(config_dir), timeout=LOCK_TIMEOUT):
            yield
    except TimeoutError as exc:
        raise SmtpRelayError(f"another run is applying to this host: {exc}") from None


def lock_name(config_dir: str) -> str:
    """One lock per Postfix instance (its configuration directory), e.g. ``smtp-relay-postfix-etc-postfix``."""
    name = "smtp-relay-postfix" + re.sub(r"[^A-Za-z0-9]+", "-", config_dir).rstrip("-")
    if len(name) <= 200:
        return name
    # A file name has at most 255 bytes: a long directory is told apart by its digest.
    return name[:150] + "-" + hashlib.sha256(os.fsencode(config_dir)).hexdigest()[:16]


def _main_cf_present(config_dir: str) -> None:
    """Debian's "No configuration" install leaves no main.cf, and Postfix's tools (postmap, postconf -c) refuse
    to work without one: an empty one first, as Postfix's own defaults."""
    path = os.path.join(config_dir, "main.cf")
    if os.path.isdir(config_dir) and not os.path.lexists(path):
        write_atomically(path, b"", mode=0o644)


def _service(service: Service, configured: dict, check_mode: bool, installed: bool) -> dict:
    """Enable and start; reload after a main.cf change, restart when a changed parameter needs it."""
    state = service.state() if installed else {"active": False, "enabled": False}
    actions = []
    if not state["enabled"]:
        actions.append("enable")
    if not state["active"]:
        actions.append("start")
    elif configured["changed"]:
        actions.append("restart" if configured["restart_required"] else "reload")
    if not check_mode:
        for action in actions:
            service.do(action)
    return {"systemd": service.systemd, **state, "actions": actions}
