# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the one file writer (the semantics of ``AnsibleModule.atomic_move``).

A file is written as a hidden temporary file in the target's directory that is given its mode, owner,
group and SELinux context before any byte lands, flushed to disk, then renamed over the target, and the
directory is flushed: readers see the old file or the new one, never half of one, and a secret is never
readable by anyone else, not even for a moment. No backup copy is left behind.

What the new file is given (:func:`identity`):

- mode: the one asked for; else the existing file's; else ``default_mode``.
- owner and group: the ones asked for (failing when they cannot be given); else the existing file's, as far
  as the process may give them (a user that is not root keeps the file as its own, like ``atomic_move``);
  else the process's.
- SELinux context, when the ``selinux`` Python binding is on the host and SELinux is enabled: the existing
  file's; else the policy's default for the path (``matchpathcon``); else what the directory gives.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

try:
    # libselinux's binding; optional, as in Ansible's own file handling: without it no context is set.
    import selinux
except ImportError:  # pragma: no cover - depends on the host
    selinux = None

DEFAULT_MODE = 0o644
# What Linux takes in a path before looking at any file: each name at most NAME_MAX bytes, the whole path less than
# PATH_MAX bytes, and no NUL (open() raises ValueError for one, ENAMETOOLONG for the others).
NAME_MAX = 255
PATH_MAX = 4096


@dataclass(frozen=True)
class Identity:
    """Permission bits, owner, group and SELinux context a file is given (None: as the file was created)."""

    mode: int
    uid: int | None = None
    gid: int | None = None
    # The owner was asked for: not being able to give it is an error (a copied one is best effort).
    owner_required: bool = False
    context: str | None = None


def _selinux_enabled() -> bool:
    return selinux is not None and selinux.is_selinux_enabled() == 1


def selinux_context(path: str, exists: bool, mode: int) -> str | None:
    """The SELinux context a file at ``path`` should have: the existing file's, else the policy's default."""
    if not _selinux_enabled():
        return None
    try:
        if exists:
            rc, context = selinux.getfilecon_raw(path)
        else:
            rc, context = selinux.matchpathcon(path, stat.S_IFREG | mode)
    except OSError:
        return None  # no context known (no label, no matching rule): the directory's default applies
    return context if rc >= 0 and context else None


def identity(
    path: str,
    *,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
    default_mode: int = DEFAULT_MODE,
) -> Identity:
    """What a file written at ``path`` is given (see the module docstring)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    if mode is None:
        mode = stat.S_IMODE(st.st_mode) if st else default_mode
    required = uid is not None or gid is not None
    if st:
        uid = st.st_uid if uid is None else uid
        gid = st.st_gid if gid is None else gid
    return Identity(mode, uid, gid, required, selinux_context(path, st is not None, mode))


def _give(path: str, fd: int, wanted: Identity) -> None:
    """Give the file open as ``fd`` at ``path`` its owner, then (as chown may clear set-id bits) its mode."""
    if wanted.uid is not None or wanted.gid is not None:
        st = os.fstat(fd)
        uid = -1 if wanted.uid in (None, st.st_uid) else wanted.uid
        gid = -1 if wanted.gid in (None, st.st_gid) else wanted.gid
        if (uid, gid) != (-1, -1):
            try:
                os.fchown(fd, uid, gid)
            except PermissionError:
                if wanted.owner_required:
                    raise
    os.fchmod(fd, wanted.mode)
    if wanted.context is not None and selinux.lsetfilecon(path, wanted.context) != 0:
        raise OSError(f"cannot give {path} the SELinux context {wanted.context}")


def path_problem(path: str) -> str | None:
    """Why the system refuses ``path`` whatever the files are (so callers can name the option that gave it)."""
    try:
        raw = os.fsencode(path)
    except (TypeError, UnicodeError):
        return "is not a path the file system can take"
    if b"\0" in raw:
        return "contains a NUL character"
    if len(raw) >= PATH_MAX:
        return f"is longer than {PATH_MAX - 1} bytes"
    if any(len(name) > NAME_MAX for name in raw.split(b"/")):
        return f"has a name longer than {NAME_MAX} bytes"
    return None


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_atomically(
    path: str,
    data: bytes,
    *,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
    default_mode: int = DEFAULT_MODE,
    before_replace: Callable[[str], None] | None = None,
) -> None:
    """Replace (or create) ``path`` with ``data``; see the module docstring for what the file is given.

    ``before_replace(tmp)`` runs once the temporary file is complete and flushed, before it is renamed
    (to build something from it, such as a Postfix index); when it raises, ``path`` is left as it was.
    Raises OSError; the temporary file never outlives the call.
    """
    directory = os.path.dirname(path) or "."
    wanted = identity(path, mode=mode, uid=uid, gid=gid, default_mode=default_mode)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _give(tmp, handle.fileno(), wanted)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, path)
    except BaseException:
        unlink_quietly(tmp)
        raise
    fsync_dir(directory)


def move_atomically(
    src: str,
    dest: str,
    *,
    mode: int | None = None,
    uid: int | None = None,
    gid: int | None = None,
    default_mode: int = DEFAULT_MODE,
) -> None:
    """Rename the finished file ``src`` (in the directory of ``dest``) over ``dest``, given what a file written at
    ``dest`` is given; for files another program wrote, such as ``postmap``. ``src`` is left to the caller on error.
    """
    wanted = identity(dest, mode=mode, uid=uid, gid=gid, default_mode=default_mode)
    fd = os.open(src, os.O_RDONLY)
    try:
        _give(src, fd, wanted)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(src, dest)
    fsync_dir(os.path.dirname(dest) or ".")


LOCK_DIRS = ("/run/lock", "/var/lock")


@contextlib.contextmanager
def exclusive_lock(name: str, timeout: float = 300.0, poll: float = 0.2):
    """Hold an exclusive ``flock`` on ``<lock dir>/<name>.lock`` for the ``with`` block; wait at most ``timeout``.

    Two runs applying to one host (two operators, a cron job and a pipeline) take turns instead of interleaving
    their files. The lock lives in the volatile lock directory, so nothing is left in the configuration and a
    crashed run's lock goes with its process.
    """
    directory = next((d for d in LOCK_DIRS if os.path.isdir(d)), tempfile.gettempdir())
    path = os.path.join(directory, f"{name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        waited = 0.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if waited >= timeout:
                    raise TimeoutError(f"{path} is held by another run; gave up after {timeout:g}s") from None
                time.sleep(poll)
                waited += poll
        yield path
    finally:
        os.close(fd)
