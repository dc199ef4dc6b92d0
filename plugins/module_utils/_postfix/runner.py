# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: running Postfix's programs and reading its settings, the one way.

``PostconfRunner`` is the seam between this logic and the host's binaries; ``postfix_present`` is the one answer
to "is Postfix installed here"; ``read_effective``/``read_nondefault`` read main.cf through postconf.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError

DEFAULT_CONFIG_DIR = "/etc/postfix"


def _main_cf(config_dir: str) -> str:
    return os.path.join(config_dir, "main.cf")


def main_cf_exists(config_dir: str) -> bool:
    """Debian's "No configuration" install leaves no main.cf, and then every ``postconf -c`` fails."""
    return os.path.exists(_main_cf(config_dir))


class PostconfRunner:
    """The seam between this logic and the Postfix binaries.

    ``run_command(args) -> (rc, stdout, stderr)``; modules pass ``module.run_command``, tests a fake.
    ``which(name) -> path | None`` resolves binaries (modules pass ``module.get_bin_path``); without it
    the bare names are run, which is what tests expect.
    """

    def __init__(self, run_command: Callable, which: Callable[[str], str | None] | None = None):
        self._run_command = run_command
        self._which = which
        self._defaults: dict[str, str] | None = None

    @classmethod
    def for_module(cls, module) -> PostconfRunner:
        """The runner a module uses (duck-typed: this file imports nothing from ansible)."""
        return cls(module.run_command, which=lambda name: module.get_bin_path(name, opt_dirs=["/usr/sbin", "/sbin"]))

    def installed(self) -> bool:
        """Whether Postfix's tools are on the host (check mode on a fresh host runs before they are)."""
        return self._which is None or bool(self._which("postconf"))

    def _binary(self, name: str) -> str:
        if self._which is None:
            return name
        path = self._which(name)
        if not path:
            raise SmtpRelayError(f"{name} not found on the host: install Postfix first", binary=name)
        return path

    def run(self, binary: str, args: list[str], mask: Callable[[str], str] = str) -> tuple[str, str]:
        """Run a Postfix binary; fail with its (masked) stderr when it exits non-zero."""
        rc, out, err = self.run_unchecked(binary, args)
        if rc != 0:
            detail = mask((err or out or "").strip())
            raise SmtpRelayError(f"{binary} {' '.join(args)} failed (rc={rc}): {detail}", rc=rc, stderr=detail)
        return out, err

    def run_unchecked(self, binary: str, args: list[str]) -> tuple[int, str, str]:
        return self._run_command([self._binary(binary), *args])

    def run_input(self, binary: str, args: list[str], data: str) -> tuple[int, str, str]:
        """Run a binary with ``data`` on its standard input (sendmail reads the message there); never cached."""
        return self._run_command([self._binary(binary), *args], data=data)

    def postconf(self, args: list[str], mask: Callable[[str], str] = str) -> tuple[str, str]:
        return self.run("postconf", args, mask)

    def defaults(self) -> dict[str, str]:
        """Every parameter Postfix knows, with its built-in default (cached: it is long and fixed)."""
        if self._defaults is None:
            self._defaults = parse_postconf_output(self.postconf(["-d"])[0])
        return self._defaults


class ReadOnlyRunner(PostconfRunner):
    """A runner for modules that only read: each distinct command runs once per module call.

    relay_check reads the same settings for its rules and for relay_info's expectations; on a fleet every
    postconf saved is a process saved per host.
    """

    def __init__(self, run_command: Callable, which: Callable[[str], str | None] | None = None):
        super().__init__(run_command, which)
        self._done: dict[tuple, tuple[int, str, str]] = {}

    def run_unchecked(self, binary: str, args: list[str]) -> tuple[int, str, str]:
        key = (binary, *args)
        if key not in self._done:
            self._done[key] = super().run_unchecked(binary, args)
        return self._done[key]


def lines_of(text: str, keepends: bool = False) -> list[str]:
    """Lines the way Postfix splits its files: at "\n" only (str.splitlines also splits at U+2028, \f...)."""
    parts = text.split("\n")
    if keepends:
        return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
    return parts[:-1] + ([parts[-1]] if parts[-1] else [])


def parse_postconf_output(text: str) -> dict[str, str]:
    """``name = value`` lines (``name =`` when empty), as postconf prints them without -f."""
    result = {}
    for line in lines_of(text):
        name, sep, value = line.partition(" =")
        if sep and name and " " not in name:
            result[name] = value[1:] if value.startswith(" ") else value
    return result


def read_nondefault(runner: PostconfRunner, config_dir: str = DEFAULT_CONFIG_DIR) -> dict[str, str]:
    """Parameters set in main.cf (``postconf -n``); empty when there is no main.cf yet."""
    if not main_cf_exists(config_dir):
        return {}
    values = parse_postconf_output(runner.postconf(["-n", "-c", config_dir])[0])
    # -c makes postconf list config_directory as set even when main.cf does not mention it.
    if values.get("config_directory") == config_dir:
        del values["config_directory"]
    return values


def read_effective(
    runner: PostconfRunner, config_dir: str = DEFAULT_CONFIG_DIR, names: list[str] | None = None
) -> dict[str, str]:
    """Effective values (all, or ``names``; unknown names are left out). Without main.cf: the defaults."""
    if not main_cf_exists(config_dir):
        defaults = runner.defaults()
        return dict(defaults) if names is None else {n: defaults[n] for n in names if n in defaults}
    return parse_postconf_output(runner.postconf(["-c", config_dir, *(names or [])])[0])


def postfix_version(runner: PostconfRunner) -> str:
    return runner.postconf(["-d", "-h", "mail_version"])[0].strip()


def postfix_present(runner: PostconfRunner) -> bool:
    """Whether Postfix is installed and its postconf answers (a broken or half-removed install does not)."""
    if not runner.installed():
        return False
    try:
        rc, _out, _err = runner.run_unchecked("postconf", ["-d", "-h", "mail_version"])
    except SmtpRelayError:
        return False
    return rc == 0
