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
import os
import re

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._files import exclusive_lock, write_atomically
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import ensure_map
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import (
    apply,
    encode_text,
    printable,
    read_text,
)
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


def _mailname(path: str, content: str, check_mode: bool) -> dict | None:
    current = read_text(path)
    wanted = content.rstrip("\n") + "\n"
    if current == wanted:
        return None
    if not check_mode:
        write_atomically(path, encode_text(wanted))
    return {"before_header": path, "after_header": path, "before": printable(current or ""), "after": wanted}


def apply_plan(
    runner: PostconfRunner,
    *,
    main_cf: dict,
    maps: list[dict] = (),
    secret_maps: list[dict] = (),
    map_type: str | None = None,
    mailname_file: str | None = None,
    mailname: str | None = None,
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

    with one_run_at_a_time(config_dir, check_mode):
        if not check_mode:
            _main_cf_present(config_dir)

        for entry, secret in [*((m, False) for m in maps), *((m, True) for m in secret_maps)]:
            done = ensure_map(
                runner,
                entries=entry.get("entries") or {},
                name=entry["name"],
                map_type=map_type,
                secret=secret,
                config_dir=config_dir,
                state=entry.get("state") or "present",
                check_mode=check_mode,
            )
            result["warnings"].extend(done.pop("warnings", []))
            if done["changed"]:
                result["changed_parts"].append(entry["name"])
                result["diff"].append(done["diff"])

        if mailname_file and mailname is not None:
            diff = _mailname(mailname_file, mailname, check_mode)
            if diff:
                result["changed_parts"].append(mailname_file)
                result["diff"].append(diff)

        configured = apply(runner, main_cf, config_dir=config_dir, check_mode=check_mode)
        result["warnings"].extend(configured.pop("warnings", []))
        result["main_cf"] = {k: configured[k] for k in ("changed_parameters", "restart_required")}
        if configured["changed"]:
            result["changed_parts"].append("main.cf")
            result["diff"].append(configured["diff"])

        if service:
            result["service"] = _service(
                Service(runner, service, systemd), configured, check_mode, installed=runner.installed()
            )
            result["changed_parts"].extend(f"service {action}" for action in result["service"]["actions"])
    result["changed"] = bool(result["changed_parts"])
    return result


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
    return "smtp-relay-postfix" + re.sub(r"[^A-Za-z0-9]+", "-", config_dir).rstrip("-")


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
