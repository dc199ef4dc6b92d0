# SPDX-License-Identifier: GPL-3.0-or-later
"""What the generated-input tests of the Postfix modules share: a sandbox per input, the fake host, the runner and
the values (the bugs they found are kept fixed by test_fuzz_findings.py)."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shutil
import tempfile
from unittest import mock

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.module_utils.testing import patch_module_args
from hypothesis import strategies as st

from ansible_collections.smtp.relay.plugins.module_utils._postfix import apply as _apply
from tests.unit.plugins.module_utils.test_apply import FakeHost
from tests.unit.plugins.modules.test_option_fuzz import anything, odd_list, odd_number, odd_text

TRIED: dict[str, int] = {}

# Secrets carry a head and a tail no other input contains: neither may appear anywhere in a module's output.
SECRET_HEAD, SECRET_TAIL = "Zk7hS3cr", "Qw9xT0p5"
HOST_SECRET = "H0stPa55-Vw3r"  # the password already in the host's sasl_passwd
SPACE = " \t\n\v\f\r"  # white space to Postfix (C isspace): no other character is trimmed from a value
CONF = "etc-postfix"  # the configuration directory, inside each input's sandbox
MAPS = {
    "sasl_passwd": (f"[relay.example.org]:587 u:{HOST_SECRET}\n", 0o600),
    "sender_canonical": ("root noreply@example.org\n", 0o644),
}
FILES = {
    "main.cf": "# kept\nrelayhost = [relay.example.org]:587\nsmtp_sasl_auth_enable = yes\n"
    "smtp_tls_security_level = encrypt\nmyorigin = example.org\n",
    "master.cf": "smtp      inet  n       -       y       -       -       smtpd\n",
}


def write_template(top: str) -> None:
    """A configured host: main.cf, master.cf, two maps built by the fake postmap, /etc/mailname."""
    conf = os.path.join(top, CONF)
    os.makedirs(conf)
    for name, text in FILES.items():
        with open(os.path.join(conf, name), "w", encoding="utf-8") as handle:
            handle.write(text)
    with open(os.path.join(top, "mailname"), "w", encoding="utf-8") as handle:
        handle.write("example.org\n")
    for name, (text, mode) in MAPS.items():
        source = os.path.join(conf, name)
        with open(source, "w", encoding="utf-8") as handle:
            handle.write(text)
        key, value = text.split()
        with open(source + ".db", "w", encoding="utf-8") as handle:
            json.dump({"type": "hash", "entries": {key: value}}, handle)
        for path in (source, source + ".db"):
            os.chmod(path, mode)
        stat = os.stat(source)
        os.utime(source + ".db", (stat.st_atime, stat.st_mtime + 1))  # built after its source: not stale


_BASE: list[str] = []


def use_base(directory) -> None:
    """Make the sandboxes under ``directory`` (pytest's own temporary directory, which pytest prunes even after
    a run that was killed before its teardown)."""
    _BASE[:] = [str(directory)]


@functools.cache
def _root() -> str:
    """The directory of the template and of every sandbox, made on first use (importing this file makes none)."""
    root = tempfile.mkdtemp(prefix="smtp-relay-fuzz-postfix-", dir=_BASE[0] if _BASE else None)
    write_template(os.path.join(root, "template"))
    return root


def remove_sandboxes() -> None:
    if _root.cache_info().currsize:
        shutil.rmtree(_root(), ignore_errors=True)
        _root.cache_clear()


def snapshot(top: str) -> dict:
    """Every file and directory under ``top``: mode and content."""
    found = {}
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(directory, name)
            content = None
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    content = handle.read()
            found[os.path.relpath(path, top)] = (os.lstat(path).st_mode, content)
    return found


@contextlib.contextmanager
def sandbox():
    """A fresh copy of the template for one input: (its root, its configuration directory)."""
    top = tempfile.mkdtemp(dir=_root(), prefix="in-")
    shutil.copytree(os.path.join(_root(), "template"), top, dirs_exist_ok=True, symlinks=True)
    try:
        yield top, os.path.join(top, CONF)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def inside(top: str, value):
    """A generated path kept inside the sandbox (no separators or variables for Ansible's path type to expand)."""
    if not isinstance(value, str):
        return value
    return os.path.join(top, value.replace("/", "_").replace("$", "_").replace("~", "_") or "_")


@contextlib.contextmanager
def fake_host(top: str):
    """Every program the modules run answered by a FakeHost (Postfix 3.7, dpkg-query, systemctl)."""
    host = FakeHost(installed=("postfix", "libsasl2-modules"))
    with (
        mock.patch.object(AnsibleModule, "run_command", lambda self, args, **kw: host(args)),
        mock.patch.object(AnsibleModule, "get_bin_path", lambda self, name, **kw: f"/usr/sbin/{name}"),
        mock.patch.object(_apply, "SYSTEMD_RUNTIME", top),
    ):
        yield host


def host_state(host: FakeHost) -> tuple:
    """The fake host's packages and service, and every command that would change the service."""
    changing = [c for c in host.called("systemctl") if c[1] not in ("is-active", "is-enabled")]
    return sorted(host.installed), host.active, host.enabled, changing


def draw(data, options: dict, required: dict | None = None, max_size: int = 5) -> dict:
    chosen = data.draw(st.sets(st.sampled_from(sorted(options)), max_size=max_size), label="options")
    args = dict(required or {})
    for name in sorted(chosen):
        args[name] = data.draw(options[name], label=name)
    return args


def run(main, args: dict, check_mode: bool) -> dict:
    out = io.StringIO()
    args = {**args, "_ansible_check_mode": check_mode, "_ansible_diff": True}
    with patch_module_args(args), contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main()  # any other exception escaping main() fails the test, unless the caller knows the bug
    return json.loads(out.getvalue())


def _word(name: str, text: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def names_an_option(result: dict, names) -> bool:
    msg = result.get("msg", "")
    return "Traceback" not in msg and any(_word(name, msg) for name in names)


def no_secret(result: dict, host_secret: bool = True) -> None:
    """No secret anywhere in the output, the echo of the arguments (``invocation``) included.

    ``host_secret``: nor the password in the host's sasl_passwd (a writing module told to overwrite that table as
    a table that is not secret shows its old content in the diff, as asked).
    """
    text = json.dumps(result)
    assert SECRET_HEAD not in text and SECRET_TAIL not in text, result
    assert not host_secret or HOST_SECRET not in text, result


def truthy(value) -> bool:
    try:
        return boolean(value, strict=False)
    except TypeError:
        return False


def count(name: str, outcome: str) -> str:
    for key in (f"{name}: tried", f"{name}: {outcome}"):
        TRIED[key] = TRIED.get(key, 0) + 1
    return outcome


def outcome_of(result: dict, check_key: str | None = None) -> str:
    if result.get("failed"):
        return "failed on a check" if check_key and check_key in result else "refused"
    return "accepted"


def as_dict(value) -> dict:
    """A dict option as Ansible passed it to the module (it parses JSON and k=v strings)."""
    return check_type_dict(value)


def read_main_cf(conf: str) -> dict:
    """main.cf as Postfix reads it (written apart from the code under test): continuation lines start with white
    space, comments with '#'."""
    values: dict[str, str] = {}
    last = None
    with open(os.path.join(conf, "main.cf"), encoding="utf-8", errors="surrogateescape", newline="") as handle:
        for line in handle.read().split("\n"):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if line[0] in SPACE:
                values[last] += " " + line.strip(SPACE)
                continue
            name, value = line.split("=", 1)
            last = name.strip(SPACE)
            values[last] = value.strip(SPACE)
    return values


def _expected(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_expected(v) for v in value)
    return str(value)


def main_cf_round_trips(conf: str, wanted) -> None:
    written = read_main_cf(conf)
    for name, value in as_dict(wanted).items():
        if value is None:
            assert name not in written, name
        else:
            assert written.get(name) == _expected(value).strip(SPACE), (name, value, written.get(name))


def map_round_trips(path: str, wanted, map_type: str | None) -> None:
    wanted = {k: str(v) for k, v in as_dict(wanted).items()}
    with open(path, encoding="utf-8") as handle:
        lines = [ln for ln in handle.read().split("\n") if ln and not ln.startswith("#")]
    assert dict(line.split(" ", 1) for line in lines) == wanted
    suffix = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}.get(map_type or "hash")
    if suffix:
        with open(path + suffix, encoding="utf-8") as handle:
            assert json.load(handle)["entries"] == {k.lower(): v for k, v in wanted.items()}


# -- values ----------------------------------------------------------------------------------------------------

secret = st.builds(
    lambda mid: SECRET_HEAD + mid + SECRET_TAIL,
    st.one_of(st.sampled_from(["", "\n", "\r\n", " ", "\x00", "\u2028", ":", "\t", " x "]), st.text(max_size=8)),
)
SECRET_NAMES = ["relay_api_key", "smtp_sasl_passwd", "my_secret"]
PARAMETERS = [
    "relayhost",
    "myorigin",
    "smtp_tls_security_level",
    "smtp_sasl_auth_enable",
    "biff",
    "inet_interfaces",
    "smtputf8_enable",
    "mydestination",
    "relayhst",
    "compatibility_level",
]
plain_value = st.one_of(
    st.sampled_from(["[relay.example.org]:587", "yes", "no", "", "loopback-only", "$myhostname", True, 587, None]),
    st.lists(st.sampled_from(["a", "b c", "$x"]), max_size=3),
    odd_number,
    odd_list,
    anything,
)
parameter_name = st.one_of(st.sampled_from(PARAMETERS), odd_text)
# Plausible values weigh as much as odd ones, so that accepted inputs (and their round trip) are tried too.
GOOD_VALUES = {
    "relayhost": ["[relay.example.org]:587", "", None, "[ipv6:2001:db8::25]:465"],
    "myorigin": ["example.org", " padded\t", "caf\xe9.example", "$myhostname", None],
    "biff": [True, False, "yes", "no", None],
    "mydestination": ["", ["localhost", "$myhostname"], None],
    "compatibility_level": [3, "3.6"],
    "smtputf8_enable": [True, "no"],
}
good_settings = st.fixed_dictionaries({}, optional={n: st.sampled_from(v) for n, v in GOOD_VALUES.items()})
settings = st.one_of(
    good_settings,
    good_settings,
    st.dictionaries(parameter_name, plain_value, max_size=4),
    st.dictionaries(st.sampled_from(SECRET_NAMES), st.one_of(secret, st.lists(secret, max_size=2)), max_size=2),
    st.builds(
        lambda a, b: {**a, **b},
        st.dictionaries(parameter_name, plain_value, max_size=2),
        st.dictionaries(st.sampled_from(SECRET_NAMES), secret, max_size=1),
    ),
    st.one_of(odd_text, odd_list, odd_number),  # not a dict at all
)
boolish = st.one_of(st.booleans(), st.sampled_from(["yes", "no", "true", "0", "maybe", "", None]), odd_text)
map_key = st.one_of(st.sampled_from(["[relay.example.org]:587", "root", "@web1", "Root", "#x", "a b"]), odd_text)
map_value = st.one_of(st.sampled_from(["u:pw", "noreply@example.org", " pad ", 25]), odd_number, odd_text, anything)
good_entries = st.dictionaries(
    st.sampled_from(["[relay.example.org]:587", "root", "@web1", "Www", "caf\xe9", "a:b"]),
    st.sampled_from(["u:pw", "noreply@example.org", "inner space", 25, "\xe9t\xe9"]),
    max_size=4,
)
entries = st.one_of(
    good_entries, good_entries, st.dictionaries(map_key, map_value, max_size=4), st.one_of(odd_text, odd_list)
)
secret_entries = st.dictionaries(map_key, secret, min_size=1, max_size=3)
map_name = st.one_of(st.sampled_from(["sasl_passwd", "sender_canonical", "generic", "new_map", "..", "a/b"]), odd_text)
map_type = st.one_of(st.sampled_from(["hash", "btree", "lmdb", "cdb", "texthash"]), odd_text)
state = st.one_of(st.sampled_from(["present", "absent"]), odd_text)


def config_dir(conf: str, top: str):
    """Mostly the sandbox's configuration directory; sometimes a missing or odd one inside the sandbox."""
    return st.one_of(st.just(conf), st.just(conf), odd_text.map(lambda value: inside(top, value)))
