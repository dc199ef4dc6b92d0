# SPDX-License-Identifier: GPL-3.0-or-later
"""Keep the unit tests off the controller's own Postfix: what the controller has installed never changes a result.

While the guard is armed (tests/unit/conftest.py arms it for every unit test not marked ``peers``), each of these
raises ``ControllerPostfixReached``:

- looking up or running a Postfix program (postconf, postmap, postqueue, postfix, sendmail...) in a directory on PATH
  or a standard bin/sbin directory, however it is done: ``shutil.which`` and ``AnsibleModule.get_bin_path`` stat every
  candidate, ``subprocess``/``os.exec*``/``os.system`` with a bare name search PATH;
- opening, listing, globbing or stat-ing the host's Postfix or Cyrus SASL directories (/etc/postfix, /usr/lib/*/sasl2,
  /var/spool/postfix...).

A test that needs a program supplies its own fake: either a seam (``PostconfRunner(fake, which=...)``, a monkeypatched
``AnsibleModule.run_command``/``get_bin_path``) or an executable in a directory it registers with ``allow``.

``ControllerPostfixReached`` is a BaseException, so that no ``except Exception`` in the code under test (run_command
turns every Exception into fail_json) can swallow it, and every hit is also recorded: conftest.py fails a test that
reached the controller even when the code under test caught the error.

Mechanism: one ``sys.addaudithook`` (open, os.listdir, os.scandir, glob.glob, subprocess.Popen, os.exec, os.spawn,
os.posix_spawn, os.system) and wrappers around ``os.stat``/``os.lstat``/``os.access``, which raise no audit event
and are what ``os.path.exists``/``isdir``, ``shutil.which`` and ``get_bin_path`` use. Both are installed once per
process and do nothing while the guard is disarmed (integration and ``peers`` tests run with it disarmed).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from fnmatch import fnmatchcase
from pathlib import Path

# Every program the Debian/EL postfix packages put on PATH (sendmail, mailq, newaliases are Postfix's too).
PROGRAMS = frozenset(
    {
        "postalias",
        "postcat",
        "postconf",
        "postdrop",
        "postfix",
        "postkick",
        "postlock",
        "postlog",
        "postmap",
        "postmulti",
        "postqueue",
        "postsuper",
        "posttls-finger",
        "qshape",
        "sendmail",
        "mailq",
        "newaliases",
        "smtp-sink",
        "smtp-source",
    }
)
# Where an installed Postfix (and the Cyrus SASL plugins relay_check looks for) keeps its state; fnmatch patterns.
HOST_TREES = (
    "/etc/postfix",
    "/etc/postfix-*",  # postmulti instances
    "/var/spool/postfix",
    "/var/lib/postfix",
    "/usr/lib/postfix",
    "/usr/libexec/postfix",
    "/usr/lib/sasl2",
    "/usr/lib/*/sasl2",
    "/usr/lib64/sasl2",
)
# Searched by get_bin_path (opt_dirs and its sbin fallback) whatever PATH says.
PROGRAM_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")

_TREE_PREFIXES = tuple(sorted({tree.split("*", 1)[0] for tree in HOST_TREES}))
_AUDITED_PATHS = frozenset({"open", "os.listdir", "os.scandir"})
_AUDITED_GLOBS = frozenset({"glob.glob", "glob.glob/2"})
_AUDITED_EXECS = frozenset({"subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.system"})
_AUDITED = _AUDITED_PATHS | _AUDITED_GLOBS | _AUDITED_EXECS
# Where each exec event carries (executable, argv, env) in its arguments.
_EXEC_ARGS = {"subprocess.Popen": (0, 1, 3), "os.exec": (0, 1, 2), "os.posix_spawn": (0, 1, 2), "os.spawn": (1, 2, 3)}


UNIT = Path(__file__).resolve().parent


def applies_to(item) -> bool:
    """Whether the guard is armed for a pytest item: every unit test but those that talk to the lab (``peers``)."""
    return Path(item.path).resolve().is_relative_to(UNIT) and item.get_closest_marker("peers") is None


class ControllerPostfixReached(BaseException):
    """A unit test reached the Postfix (or SASL plugins) of the machine running the tests."""


class _State:
    installed = False
    armed = False
    allowed: tuple[str, ...] = ()
    reached: list[str] = []


_os_stat, _os_lstat, _os_access = os.stat, os.lstat, os.access


def _normal(path) -> str | None:
    """An absolute, normalized str path, or None for what is not a path (file descriptors, None)."""
    if path is None or isinstance(path, int):
        return None
    try:
        path = os.fsdecode(os.fspath(path))
    except TypeError:
        return None
    if not path.startswith("/"):
        try:
            path = os.path.join(os.getcwd(), path)
        except OSError:
            return None
    return os.path.normpath(path)


def _is_allowed(path: str) -> bool:
    return any(path == d or path.startswith(d + "/") for d in _State.allowed)


def _search_dirs() -> set[str]:
    path = os.environ.get("PATH", os.defpath)
    return {_normal(d or os.curdir) for d in path.split(os.pathsep)} | set(PROGRAM_DIRS)


def _host_tree(path: str) -> bool:
    return path.startswith(_TREE_PREFIXES) and any(
        fnmatchcase(path, tree) or fnmatchcase(path, tree + "/*") for tree in HOST_TREES
    )


def path_reason(path) -> str | None:
    """Why touching ``path`` would read the controller's Postfix, or None."""
    path = _normal(path)
    if path is None or _is_allowed(path):
        return None
    if _host_tree(path):
        return f"{path} belongs to the controller's Postfix/SASL installation"
    head, name = os.path.split(path)
    if name in PROGRAMS and head in _search_dirs():
        return f"{path}: a look-up of the controller's {name}"
    return None


def _glob_reason(pattern) -> str | None:
    pattern = _normal(pattern)
    if pattern is None or _is_allowed(pattern):
        return None
    if _host_tree(pattern):
        return f"glob {pattern} lists the controller's Postfix/SASL installation"
    return None


def _program_reason(program, env_path: str | None) -> str | None:
    """Why running ``program`` (a path or a bare name resolved through PATH) would run the controller's."""
    try:
        program = os.fsdecode(program)
    except TypeError:
        return None
    if "/" in program:
        return path_reason(program)
    if program not in PROGRAMS:
        return None
    path = os.environ.get("PATH", os.defpath) if env_path is None else env_path
    for directory in path.split(os.pathsep):
        candidate = _normal(os.path.join(directory or os.curdir, program))
        if _os_access(candidate, os.X_OK):
            return None if _is_allowed(candidate) else f"runs {candidate}, the controller's {program}"
    return f"runs {program} through PATH: the result depends on whether the controller has Postfix"


def _exec_reason(event: str, args: tuple) -> str | None:
    if event == "os.system":
        executable, argv, env = None, ["/bin/sh", "-c", args[0]], None
    else:
        executable, argv, env = (args[i] for i in _EXEC_ARGS[event])
        argv = [argv] if isinstance(argv, (str, bytes)) else list(argv or [])
    programs = [p for p in (executable, *argv[:1]) if p is not None]
    if len(argv) >= 3 and argv[1] in ("-c", b"-c"):  # a shell command line: its first word
        with contextlib.suppress(ValueError, TypeError):
            programs += shlex.split(os.fsdecode(argv[2]))[:1]
    env_path = env.get("PATH", env.get(b"PATH")) if isinstance(env, dict) else None
    env_path = None if env_path is None else os.fsdecode(env_path)
    return next((r for r in (_program_reason(p, env_path) for p in programs) if r), None)


def _reached(reason: str):
    message = (
        f"a unit test reached the controller's Postfix: {reason}. Unit tests must depend only on fakes they set "
        "up: give the code a fake runner/which (PostconfRunner(fake, which=...), the run_module/fake fixtures), "
        "a config_dir under tmp_path, or put a fake program in a directory registered with hermetic.allow()."
    )
    _State.reached.append(message)
    raise ControllerPostfixReached(message)


def _audit(event: str, args: tuple):
    if not _State.armed or event not in _AUDITED:
        return
    if event in _AUDITED_PATHS:
        reason = path_reason(args[0])
    elif event in _AUDITED_GLOBS:
        reason = _glob_reason(args[0])
    else:
        reason = _exec_reason(event, args)
    if reason:
        _reached(reason)


def _guarded(original):
    def guarded(path, *args, **kwargs):
        if _State.armed:
            reason = path_reason(path)
            if reason:
                _reached(reason)
        return original(path, *args, **kwargs)

    guarded.__name__ = guarded.__qualname__ = original.__name__
    guarded.__doc__ = original.__doc__
    return guarded


def install():
    """Install the guard (once per process); it starts disarmed."""
    if _State.installed:
        return
    _State.installed = True
    sys.addaudithook(_audit)
    for name, original in (("stat", _os_stat), ("lstat", _os_lstat), ("access", _os_access)):
        wrapper = _guarded(original)
        # shutil, os.walk and friends ask these sets whether a function takes dir_fd/follow_symlinks.
        for capability in (os.supports_dir_fd, os.supports_fd, os.supports_follow_symlinks, os.supports_effective_ids):
            if original in capability:
                capability.add(wrapper)
        setattr(os, name, wrapper)


@contextlib.contextmanager
def armed(on: bool = True):
    """Arm (or disarm) the guard for the duration of the block."""
    before = _State.armed
    _State.armed = on
    try:
        yield
    finally:
        _State.armed = before


@contextlib.contextmanager
def allow(directory):
    """Let the block look up and run the programs in ``directory`` (a test's own fakes)."""
    before = _State.allowed
    _State.allowed = (*before, _normal(directory))
    try:
        yield
    finally:
        _State.allowed = before


def take_reached() -> list[str]:
    """What was reached since the last call (and forget it)."""
    reached, _State.reached = _State.reached, []
    return reached


@contextlib.contextmanager
def expect_reached():
    """For the guard's own tests: the block must reach the controller, and that is not held against the test."""
    try:
        yield
    except ControllerPostfixReached:
        take_reached()
    else:
        raise AssertionError("the block did not reach the controller's Postfix, or the guard missed it")


# -- a controller with Postfix, played by fakes first on PATH --------------------------------------------------

# What Debian's postfix 3.7 package answers on a configured "Internet with smarthost" controller. The values
# differ from every fake the tests use, so a test that reached them would see different results.
_POSTCONF = """\
compatibility_level = 3.6
config_directory = /etc/postfix
inet_interfaces = all
inet_protocols = all
mail_version = 3.7.11
mydestination = $myhostname, controller.example.net, localhost
myhostname = controller.example.net
relayhost = [smtp.controller.example.net]:587
smtp_sasl_auth_enable = yes
smtp_sasl_password_maps = hash:/etc/postfix/sasl_passwd
smtp_sasl_security_options = noanonymous
smtp_tls_security_level = may
"""
_FAKES = {
    "postconf": f'case " $* " in *" -h "*) echo 3.7.11 ;; *) printf %s {shlex.quote(_POSTCONF)} ;; esac',
    "postqueue": "echo " + shlex.quote('{"queue_name": "deferred", "arrival_time": 1, "recipients": []}'),
    "postfix": "echo 'postfix/postfix-script: the Postfix mail system is running: PID: 4242' >&2",
    "postmap": ":",
    "postsuper": ":",
    "sendmail": "cat >/dev/null",
}


def write_controller_postfix(bin_dir: Path) -> Path:
    """Fake Postfix programs in ``bin_dir`` (to put first on PATH) that log every run; returns the log's path."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "runs.log"
    log.touch()
    with allow(bin_dir):
        for name, body in _FAKES.items():
            program = bin_dir / name
            program.write_text(f'#!/bin/sh\necho "{name} $*" >>{shlex.quote(str(log))}\n{body}\n')
            program.chmod(0o755)
    return log
