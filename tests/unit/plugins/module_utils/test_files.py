# SPDX-License-Identifier: GPL-3.0-or-later
"""_files: the one atomic writer (mode, owner, SELinux context, fsync, no temporaries left) and its callers."""

from __future__ import annotations

import errno
import os
import stat
import threading
import time

import pytest

from ansible_collections.smtp.relay.plugins.module_utils import _files as files
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix import apply as apply_module
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.request import write_if_changed
from ansible_collections.smtp.relay.plugins.module_utils._postfix.apply import apply_plan
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import ensure_map
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import apply

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file another owner needs root")


class FakeSelinux:
    """libselinux's binding as Ansible calls it; labels belong to inodes, so they follow a rename as real ones do."""

    def __init__(self, enabled: bool = True, defaults: dict | None = None, refuse: bool = False):
        self.enabled = enabled
        self.defaults = defaults or {}  # path -> the policy's context for it
        self.refuse = refuse
        self.labels: dict[tuple[int, int], str] = {}
        self.asked: list[tuple[str, int]] = []

    @staticmethod
    def _inode(path):
        st = os.stat(path)
        return st.st_dev, st.st_ino

    def is_selinux_enabled(self):
        return 1 if self.enabled else 0

    def getfilecon_raw(self, path):
        label = self.labels.get(self._inode(path))
        if label is None:
            raise OSError(errno.ENODATA, "No data available")
        return [len(label) + 1, label]

    def matchpathcon(self, path, mode):
        self.asked.append((path, mode))
        if path not in self.defaults:
            raise OSError(errno.ENOENT, "No such file or directory")
        return [0, self.defaults[path]]

    def lsetfilecon(self, path, context):
        if self.refuse:
            raise OSError(errno.EINVAL, "Invalid argument")
        self.labels[self._inode(path)] = context
        return 0

    def label(self, path, context):
        self.labels[self._inode(path)] = context

    def of(self, path):
        return self.labels.get(self._inode(path))


@pytest.fixture
def fake_selinux(monkeypatch):
    fake = FakeSelinux()
    monkeypatch.setattr(files, "selinux", fake)
    return fake


@pytest.fixture(autouse=True)
def no_host_selinux(monkeypatch):
    """Whatever the machine running the tests has, SELinux is what each test says."""
    monkeypatch.setattr(files, "selinux", None)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def listing(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- the writer ------------------------------------------------------------------------------------------


def test_new_file_gets_the_default_mode_and_the_exact_bytes(tmp_path):
    path = tmp_path / "f"
    files.write_atomically(str(path), b"Caf\xe9 \xff\n")
    assert path.read_bytes() == b"Caf\xe9 \xff\n"
    assert mode_of(path) == 0o644
    files.write_atomically(str(tmp_path / "g"), b"", default_mode=0o640)
    assert mode_of(tmp_path / "g") == 0o640
    assert listing(tmp_path) == ["f", "g"]


def test_existing_file_keeps_its_mode_unless_one_is_asked_for(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old\n")
    os.chmod(path, 0o640)
    files.write_atomically(str(path), b"new\n", default_mode=0o600)
    assert (path.read_bytes(), mode_of(path)) == (b"new\n", 0o640)
    files.write_atomically(str(path), b"newer\n", mode=0o600)
    assert (path.read_bytes(), mode_of(path)) == (b"newer\n", 0o600)


def test_mode_is_given_before_any_byte_is_written(tmp_path, monkeypatch):
    seen = []
    give = files._give

    def spy(path, fd, wanted):
        give(path, fd, wanted)
        seen.append((os.fstat(fd).st_size, stat.S_IMODE(os.fstat(fd).st_mode)))

    monkeypatch.setattr(files, "_give", spy)
    files.write_atomically(str(tmp_path / "secret"), b"user:password\n", mode=0o600)
    assert seen == [(0, 0o600)]


def test_file_and_directory_are_flushed(tmp_path, monkeypatch):
    synced = []
    fsync = os.fsync

    def spy(fd):
        synced.append(stat.S_ISDIR(os.fstat(fd).st_mode))
        fsync(fd)

    monkeypatch.setattr(files.os, "fsync", spy)
    files.write_atomically(str(tmp_path / "f"), b"x\n")
    assert synced == [False, True]


def test_before_replace_sees_the_finished_temporary_and_can_stop_the_write(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old\n")
    seen = []

    def look(tmp):
        with open(tmp, "rb") as handle:
            seen.append((os.path.dirname(tmp), os.path.basename(tmp).startswith(".f."), handle.read()))
        raise SmtpRelayError("refused")

    with pytest.raises(SmtpRelayError, match="refused"):
        files.write_atomically(str(path), b"new\n", before_replace=look)
    assert seen == [(str(tmp_path), True, b"new\n")]
    assert path.read_bytes() == b"old\n"
    assert listing(tmp_path) == ["f"]


def test_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(b"old\n")

    def refuse(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(files.os, "replace", refuse)
    with pytest.raises(OSError):
        files.write_atomically(str(path), b"new\n")
    assert path.read_bytes() == b"old\n"
    assert listing(tmp_path) == ["f"]


@as_root
def test_existing_owner_is_kept_and_an_asked_one_given(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"old\n")
    os.chown(path, 4242, 4343)
    os.chmod(path, 0o2750)
    files.write_atomically(str(path), b"new\n")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4242, 4343, 0o2750)
    files.write_atomically(str(path), b"newer\n", uid=0, gid=0, mode=0o600)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)


def test_copied_owner_is_best_effort_but_an_asked_one_is_not(tmp_path, monkeypatch):
    def refuse(fd, uid, gid):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(files.os, "fchown", refuse)
    path = tmp_path / "f"
    path.write_bytes(b"old\n")
    mine = os.stat(path)
    copied = files.Identity(0o640, uid=mine.st_uid + 1, gid=mine.st_gid + 1)
    monkeypatch.setattr(files, "identity", lambda *args, **kwargs: copied)
    files.write_atomically(str(path), b"new\n")  # as a user that is not root: the file stays the writer's
    assert (path.read_bytes(), mode_of(path)) == (b"new\n", 0o640)

    asked = files.Identity(0o600, uid=mine.st_uid + 1, gid=mine.st_gid + 1, owner_required=True)
    monkeypatch.setattr(files, "identity", lambda *args, **kwargs: asked)
    with pytest.raises(PermissionError):
        files.write_atomically(str(path), b"secret\n")
    assert path.read_bytes() == b"new\n"
    assert listing(tmp_path) == ["f"]


def test_identity_of_a_new_and_an_existing_file(tmp_path):
    path = tmp_path / "f"
    assert files.identity(str(path)) == files.Identity(0o644)
    assert files.identity(str(path), uid=0) == files.Identity(0o644, uid=0, owner_required=True)
    path.write_bytes(b"")
    os.chmod(path, 0o600)
    st = os.stat(path)
    assert files.identity(str(path)) == files.Identity(0o600, st.st_uid, st.st_gid)
    assert files.identity(str(path), mode=0o640, gid=0) == files.Identity(0o640, st.st_uid, 0, True)


def test_move_gives_a_finished_file_what_the_target_has(tmp_path):
    dest = tmp_path / "table.db"
    dest.write_bytes(b"old")
    os.chmod(dest, 0o640)
    built = tmp_path / ".table.tmp.db"
    built.write_bytes(b"new")
    os.chmod(built, 0o666)
    files.move_atomically(str(built), str(dest))
    assert (dest.read_bytes(), mode_of(dest)) == (b"new", 0o640)
    built.write_bytes(b"newer")
    files.move_atomically(str(built), str(dest), mode=0o600)
    assert (dest.read_bytes(), mode_of(dest)) == (b"newer", 0o600)
    assert listing(tmp_path) == ["table.db"]


# -- SELinux ---------------------------------------------------------------------------------------------


def test_selinux_context_of_the_existing_file_is_kept(tmp_path, fake_selinux):
    path = tmp_path / "main.cf"
    path.write_bytes(b"old\n")
    fake_selinux.label(path, "system_u:object_r:postfix_etc_t:s0")
    files.write_atomically(str(path), b"new\n")
    assert fake_selinux.of(path) == "system_u:object_r:postfix_etc_t:s0"
    assert fake_selinux.asked == []


def test_new_file_gets_the_policy_default_context(tmp_path, fake_selinux):
    path = tmp_path / "sasl_passwd"
    fake_selinux.defaults[str(path)] = "system_u:object_r:postfix_etc_t:s0"
    files.write_atomically(str(path), b"x\n", mode=0o600)
    assert fake_selinux.of(path) == "system_u:object_r:postfix_etc_t:s0"
    assert fake_selinux.asked == [(str(path), stat.S_IFREG | 0o600)]


def test_no_context_known_sets_none(tmp_path, fake_selinux):
    files.write_atomically(str(tmp_path / "unlabelled"), b"x\n")
    assert fake_selinux.labels == {}
    assert (tmp_path / "unlabelled").read_bytes() == b"x\n"


@pytest.mark.parametrize("selinux", [None, FakeSelinux(enabled=False)], ids=["binding-absent", "disabled"])
def test_without_selinux_no_context_is_asked_or_set(tmp_path, monkeypatch, selinux):
    monkeypatch.setattr(files, "selinux", selinux)
    path = tmp_path / "f"
    files.write_atomically(str(path), b"x\n")
    assert path.read_bytes() == b"x\n"
    if selinux is not None:
        assert (selinux.labels, selinux.asked) == ({}, [])


def test_context_that_cannot_be_given_stops_the_write(tmp_path, fake_selinux):
    path = tmp_path / "f"
    path.write_bytes(b"old\n")
    fake_selinux.label(path, "system_u:object_r:etc_t:s0")
    fake_selinux.refuse = True
    with pytest.raises(OSError):
        files.write_atomically(str(path), b"new\n")
    assert path.read_bytes() == b"old\n"
    assert listing(tmp_path) == ["f"]


# -- the callers go through it ---------------------------------------------------------------------------


@pytest.fixture
def config_dir(tmp_path):
    (tmp_path / "main.cf").write_text("relayhost = [old.example.org]:587\n")
    return tmp_path


def test_main_cf_keeps_its_context_and_maps_get_the_default(runner, config_dir, fake_selinux):
    etc = "system_u:object_r:postfix_etc_t:s0"
    fake_selinux.label(config_dir / "main.cf", etc)
    for name in ("sasl_passwd", "sasl_passwd.db", "generic", "generic.db"):
        fake_selinux.defaults[str(config_dir / name)] = etc
    apply(runner, {"relayhost": "[relay.example.org]:587"}, config_dir=str(config_dir))
    ensure_map(runner, entries={"r": "u:p"}, name="sasl_passwd", secret=True, config_dir=str(config_dir))
    ensure_map(runner, entries={"a": "b"}, name="generic", config_dir=str(config_dir))
    assert {p.name: fake_selinux.of(p) for p in config_dir.iterdir()} == {
        "main.cf": etc,
        "sasl_passwd": etc,
        "sasl_passwd.db": etc,
        "generic": etc,
        "generic.db": etc,
    }
    assert mode_of(config_dir / "sasl_passwd") == mode_of(config_dir / "sasl_passwd.db") == 0o600


def test_mailname_and_allowlist_request_keep_mode_and_context(runner, config_dir, fake_selinux, tmp_path):
    mailname, request = tmp_path / "mailname", tmp_path / "request.txt"
    for path, context in ((mailname, "system_u:object_r:etc_t:s0"), (request, "unconfined_u:object_r:user_home_t:s0")):
        path.write_bytes(b"old\n")
        os.chmod(path, 0o640)
        fake_selinux.label(path, context)
    apply_plan(
        runner,
        main_cf={},
        mailname_file=str(mailname),
        mailname="host.example.org",
        service=None,
        config_dir=str(config_dir),
    )
    changed, diff = write_if_changed(str(request), "new\n")
    assert changed and diff["before"] == "old\n"
    assert (mailname.read_text(), request.read_text()) == ("host.example.org\n", "new\n")
    assert mode_of(mailname) == mode_of(request) == 0o640
    assert fake_selinux.of(mailname) == "system_u:object_r:etc_t:s0"
    assert fake_selinux.of(request) == "unconfined_u:object_r:user_home_t:s0"


def test_allowlist_request_names_dest_when_it_cannot_be_written(tmp_path, fake_selinux):
    request = tmp_path / "request.txt"
    request.write_bytes(b"old\n")
    fake_selinux.label(request, "system_u:object_r:etc_t:s0")
    fake_selinux.refuse = True
    with pytest.raises(SmtpRelayError, match="cannot be written") as info:
        write_if_changed(str(request), "new\n")
    assert info.value.details["field"] == "dest"
    assert request.read_bytes() == b"old\n"
    assert listing(tmp_path) == ["request.txt"]


# -- one run at a time per host -----------------------------------------------------------------------------------


def test_a_second_holder_waits_for_the_first(lock_dir):
    order = []

    def second():
        with files.exclusive_lock("demo", timeout=5, poll=0.01):
            order.append("second")

    with files.exclusive_lock("demo", timeout=5) as path:
        assert path == str(lock_dir / "demo.lock")
        worker = threading.Thread(target=second)
        worker.start()
        time.sleep(0.2)
        order.append("first done")
    worker.join(5)
    assert order == ["first done", "second"]


def test_a_lock_held_too_long_is_a_clear_error(lock_dir):
    # flock locks belong to the open file: a second open in the same process contends like another run.
    with (
        files.exclusive_lock("demo", timeout=5),
        pytest.raises(TimeoutError, match="held by another run"),
        files.exclusive_lock("demo", timeout=0.1, poll=0.02),
    ):
        pass


def test_apply_plan_names_the_other_run(lock_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(apply_module, "LOCK_TIMEOUT", 0.1)
    (tmp_path / "main.cf").write_text("")
    with (
        files.exclusive_lock(apply_module.lock_name(str(tmp_path))),
        pytest.raises(SmtpRelayError, match="another run is applying to this host"),
    ):
        apply_module.apply_plan(
            PostconfRunner(lambda argv: (0, "", "")), main_cf={}, config_dir=str(tmp_path), service=None
        )
    assert apply_module.lock_name("/etc/postfix-out") == "smtp-relay-postfix-etc-postfix-out"
