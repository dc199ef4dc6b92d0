# SPDX-License-Identifier: GPL-3.0-or-later
"""The release artefact: what `make build` ships, and whether the shipped collection works as users install it.

Needs no lab (it only builds and installs; marked peers so that `make test` runs it with the integration tests):

- the tarball holds exactly the git-tracked files the collection ships (plus MANIFEST.json and FILES.json), whatever
  caches, venvs and outputs lie in the work tree; uncommitted edits of tracked files ship, untracked files never do;
- build_ignore alone (a plain `ansible-galaxy collection build`) still keeps the usual debris out;
- installed with `--no-deps` next to its declared dependencies only (taken from the ansible package, never from
  Galaxy) and nothing else on the collections path, every shipped playbook loads and the docs render.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import typing

import pytest
import yaml

pytestmark = pytest.mark.peers

ROOT = pathlib.Path(__file__).resolve().parents[3]
BIN = pathlib.Path(sys.executable).parent
# Collections the ansible package brings; the declared dependencies are taken from here.
BUNDLED = pathlib.Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
GENERATED = {"MANIFEST.json", "FILES.json"}
# Tracked but for development only (build_ignore); galaxy.yml ships as MANIFEST.json.
DEV_DIRS = (".ci", "bench", "demo", "docs", "ee", "tests")
DEV_FILES = {".ansible-lint", ".gitignore", "Makefile", "galaxy.yml", "pyproject.toml"}
# Never in a collection tarball: these names at any depth, these top-level directories (outputs of make demo and
# of the allowlist playbook run from the repository), these suffixes.
NEVER = {
    ".git", ".venv", ".cache", ".peers", ".ansible", ".pytest_cache", ".ruff_cache", ".hypothesis", ".mypy_cache",
    "__pycache__",
}  # fmt: skip
NEVER_TOP = {"out", "demo-out", "allowlist-requests", *DEV_DIRS}
NEVER_SUFFIX = (".pyc", ".retry", ".tar.gz")
# What the work tree collects from make test, make demo, make bench, the playbooks and editors.
DEBRIS = [
    ".venv/pyvenv.cfg",
    ".cache/collections/x",
    ".peers/state.json",
    ".ansible/collections/x",
    ".pytest_cache/v/cache/lastfailed",
    ".ruff_cache/0.17.6/x",
    ".hypothesis/examples/x",
    "roles/postfix/.pytest_cache/x",
    "plugins/modules/__pycache__/relay_check.cpython-311.pyc",
    "playbooks/allowlist.retry",
    "out/x.txt",
    "demo-out/allowlist.csv",
    "allowlist-requests/allowlist.csv",
    "tests/output/junit/x.xml",
    "bench/results/x.json",
    "smtp-relay-0.0.1.tar.gz",
]
# Not ignored anywhere: only the git-based build keeps it out.
UNTRACKED = "plugins/modules/scratch_untracked.py"
MARKER = "uncommitted edit marker 7f3c"
# NS.NAME of a task's module (`- ns.name.module:`), of a filter, test or lookup (`| ns.name.f`, `lookup('ns.name.l'`).
USES_YAML = (
    re.compile(r"^\s*(?:-\s+)?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:(?:\s|$)", re.MULTILINE),
    re.compile(
        r"""(?:[|]\s*|\bis\s+(?:not\s+)?|\b(?:lookup|query|q)\(\s*['"])([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+\b(?!\.)"""
    ),
)
USES_PY = re.compile(r"ansible_collections\.([a-z0-9_]+)\.([a-z0-9_]+)")


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without Ansible, make or Python path settings (make test exports some)."""
    drop = {"PYTHONPATH", "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_") and k not in drop}
    return {**env, "ANSIBLE_NOCOLOR": "1", **extra}


def run(argv: list[str], cwd: pathlib.Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def make_build(repo: pathlib.Path, out: pathlib.Path, *overrides: str) -> tuple[pathlib.Path, str]:
    """`make build` into OUT (-o venv: use the venv as it is, never rebuild or relink it)."""
    argv = ["make", "-C", str(repo), "-o", "venv", "build", f"BUILD_OUTPUT={out}", *overrides]
    output = ok(run(argv, ROOT, clean_env())).stdout
    assert [p.name for p in out.iterdir()] == [TARBALL]
    return out / TARBALL, output


def tracked(repo: pathlib.Path) -> set[str]:
    names = ok(run(["git", "ls-files", "-z", "--cached"], repo, clean_env())).stdout.split("\0")
    return {n for n in names if n and (repo / n).exists()}


def shipped(files: set[str]) -> set[str]:
    return {f for f in files if f not in DEV_FILES and f.split("/", 1)[0] not in DEV_DIRS}


def members(tarball: pathlib.Path) -> tuple[set[str], set[str]]:
    """(files and symlinks, directories) of the tarball."""
    with tarfile.open(tarball) as tar:
        entries = tar.getmembers()
    return {m.name for m in entries if not m.isdir()}, {m.name for m in entries if m.isdir()}


def parents(files: set[str]) -> set[str]:
    return {str(p) for f in files for p in pathlib.PurePosixPath(f).parents if str(p) != "."}


def debris_in(names: set[str]) -> list[str]:
    return sorted(
        n for n in names if NEVER & set(n.split("/")) or n.split("/")[0] in NEVER_TOP or n.endswith(NEVER_SUFFIX)
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return make_build(ROOT, tmp_path_factory.mktemp("dist"))[0]


def test_tarball_is_the_tracked_shipped_files(built):
    files, dirs = members(built)
    expected = shipped(tracked(ROOT))
    assert not debris_in(files | dirs)
    assert not sorted(files - expected - GENERATED), "not git-tracked shipped files"
    assert not sorted(expected - files), "tracked files missing from the tarball (build_ignore too wide?)"
    assert files >= GENERATED
    assert dirs == parents(expected)


def test_work_tree_edits_ship_untracked_files_do_not(tmp_path):
    """A repository made from the work tree's tracked files, then edited and littered as a developer's would be."""
    repo = tmp_path / "repo"
    for name in tracked(ROOT):
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, repo / name, follow_symlinks=False)
    git = ["git", "-c", "init.defaultBranch=main"]
    ok(run([*git, "init", "-q"], repo, clean_env()))
    ok(run([*git, "add", "-A"], repo, clean_env()))
    with (repo / "README.md").open("a") as readme:
        readme.write(f"\n{MARKER}\n")
    (repo / "changelogs" / "fragments" / "foundation.yml").unlink()  # deleted, not `git rm`ed
    for name in [*DEBRIS, UNTRACKED]:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("debris\n")

    tarball, output = make_build(repo, tmp_path / "dist", f"BIN={BIN}")
    files, dirs = members(tarball)
    assert not debris_in(files | dirs)
    assert UNTRACKED not in files
    warned = output.partition("warning: not tracked by git, so not in the tarball:\n")[2].splitlines()
    assert UNTRACKED in warned
    assert "changelogs/fragments/foundation.yml" not in files
    with tarfile.open(tarball) as tar:
        assert MARKER in tar.extractfile("README.md").read().decode()
    assert files - GENERATED == shipped(tracked(repo))

    # Second line of defence: build_ignore alone, in the littered tree (the untracked module is shipped then).
    plain = tmp_path / "plain"
    ok(run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(plain), "."], repo, clean_env()))
    files, dirs = members(plain / TARBALL)
    assert not debris_in(files | dirs)
    assert files - GENERATED - {UNTRACKED} == shipped(tracked(repo))


class Installed(typing.NamedTuple):
    path: pathlib.Path  # a collections path holding the installed smtp.relay only
    deps: pathlib.Path  # a collections path holding the declared dependencies only
    env: dict[str, str]
    cwd: pathlib.Path


@pytest.fixture(scope="module")
def installed(built, tmp_path_factory) -> Installed:
    base = tmp_path_factory.mktemp("install")
    (base / "ansible.cfg").write_text("[defaults]\n")
    env = clean_env(
        ANSIBLE_CONFIG=str(base / "ansible.cfg"),
        ANSIBLE_HOME=str(base / "home"),
        # Not the venv's ansible_collections: only what is put on ANSIBLE_COLLECTIONS_PATH below.
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
    )
    install, deps = base / "collections", base / "deps"
    argv = [str(BIN / "ansible-galaxy"), "collection", "install", "--no-deps", "-p", str(install), str(built)]
    ok(run(argv, base, {**env, "ANSIBLE_COLLECTIONS_PATH": str(install)}))
    with tarfile.open(built) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    declared = manifest["collection_info"]["dependencies"]
    assert declared == GALAXY["dependencies"]
    for fqcn in declared:
        namespace, name = fqcn.split(".")
        (deps / "ansible_collections" / namespace).mkdir(parents=True, exist_ok=True)
        assert (BUNDLED / namespace / name / "MANIFEST.json").is_file(), f"the ansible package has no {fqcn}"
        (deps / "ansible_collections" / namespace / name).symlink_to(BUNDLED / namespace / name)
    return Installed(install, deps, env, base)


def test_declares_exactly_what_shipped_content_uses(installed):
    """Other collections named by shipped tasks, filters, lookups or plugin imports are the declared dependencies."""
    relay = installed.path / "ansible_collections" / "smtp" / "relay"
    used = set()
    for path in relay.glob("*/**/*"):
        if path.suffix in {".yml", ".yaml"} and path.parts[len(relay.parts)] in {"playbooks", "roles"}:
            used |= {m for pattern in USES_YAML for m in pattern.findall(path.read_text())}
        elif path.suffix == ".py":
            used |= {".".join(m) for m in USES_PY.findall(path.read_text())}
    used -= {"ansible.builtin", "ansible.legacy", f"{GALAXY['namespace']}.{GALAXY['name']}"}
    assert used == set(GALAXY["dependencies"])  # containers.podman: tests, demo and bench only


def test_declared_dependencies_are_met_by_the_ansible_package(built, installed):
    """A plain install, dependencies included, is satisfied offline by the collections of the ansible package."""
    target = installed.cwd / "with-deps"
    env = {k: v for k, v in installed.env.items() if k != "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH"}
    argv = [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(target), str(built)]
    proc = ok(run(argv, installed.cwd, {**env, "ANSIBLE_COLLECTIONS_PATH": str(target)}))
    for fqcn in GALAXY["dependencies"]:
        assert f"'{fqcn}:" in proc.stdout and "is already installed, skipping" in proc.stdout
    assert sorted(p.name for p in (target / "ansible_collections").iterdir()) == [GALAXY["namespace"]]


PLAYBOOKS = sorted(pathlib.PurePosixPath(p).stem for p in tracked(ROOT) if p.startswith("playbooks/"))


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_shipped_playbook_loads_with_declared_dependencies(installed, playbook):
    argv = [str(BIN / "ansible-playbook"), "--syntax-check", "-i", "localhost,", f"smtp.relay.{playbook}"]
    proc = ok(
        run(argv, installed.cwd, {**installed.env, "ANSIBLE_COLLECTIONS_PATH": f"{installed.path}:{installed.deps}"})
    )
    assert f"playbook: {installed.path}/ansible_collections/smtp/relay/playbooks/{playbook}.yml" in proc.stdout


@pytest.mark.parametrize(("kind", "plugin"), [("module", "smtp.relay.relay_check"), ("role", "smtp.relay.postfix")])
def test_docs_from_the_installed_copy(installed, kind, plugin):
    argv = [str(BIN / "ansible-doc"), "-t", kind, "-j", plugin]
    env = {**installed.env, "ANSIBLE_COLLECTIONS_PATH": f"{installed.path}:{installed.deps}"}
    doc = json.loads(ok(run(argv, installed.cwd, env)).stdout)[plugin]
    relay = f"{installed.path}/ansible_collections/smtp/relay"
    if kind == "role":
        assert doc["path"] == relay
        assert doc["entry_points"]["main"]["short_description"]
    else:
        assert doc["doc"]["filename"].startswith(f"{relay}/plugins/modules/")
        assert doc["doc"]["short_description"]
