# SPDX-License-Identifier: GPL-3.0-or-later
"""A stand-in for the postconf and postmap binaries, behaving as Postfix 3.7 was seen to behave.

Its main.cf reader is written independently of the one under test, so that tests compare two readings.
"""

from __future__ import annotations

import json
import os
import re
import shutil

DEFAULTS = {
    "biff": "yes",
    "smtpd_banner": "$myhostname ESMTP $mail_name",
    "smtpd_relay_restrictions": "${{$compatibility_level} <level {2} ? {} : {permit_mynetworks, ...}}",
    "smtpd_tls_cert_file": "",
    "compatibility_level": "0",
    "config_directory": "/etc/postfix",
    "default_database_type": "hash",
    "inet_interfaces": "all",
    "inet_protocols": "all",
    "mail_version": "3.7.11",
    "mydestination": "$myhostname, localhost.$mydomain, localhost",
    "myhostname": "host.example.test",
    "myorigin": "$myhostname",
    "relayhost": "",
    "sender_canonical_maps": "",
    "smtp_generic_maps": "",
    "smtp_header_checks": "",
    "smtp_sasl_auth_enable": "no",
    "smtp_sasl_password_maps": "",
    "smtp_sasl_security_options": "noplaintext, noanonymous",
    "smtp_tls_security_level": "",
    "smtp_tls_wrappermode": "no",
    "smtputf8_enable": "yes",
}
INDEX_SUFFIX = {"hash": ".db", "btree": ".db", "lmdb": ".lmdb", "cdb": ".cdb"}
# What postconf -m lists on Debian 12 with postfix-lmdb and postfix-cdb but not postfix-pcre.
MAP_TYPES = (
    *("btree", "cdb", "cidr", "environ", "fail", "hash", "inline", "internal", "lmdb", "memcache", "nis"),
    *("pipemap", "proxy", "randmap", "regexp", "socketmap", "static", "tcp", "texthash", "unionmap", "unix"),
)


class FakePostfix:
    """Callable like ``module.run_command``; records every call in ``calls``."""

    def __init__(self, defaults: dict | None = None, postmap_fails: bool = False, map_types=MAP_TYPES):
        self.defaults = dict(DEFAULTS if defaults is None else defaults)
        self.postmap_fails = postmap_fails
        self.map_types = list(map_types)
        self.calls: list[list[str]] = []

    def __call__(self, args):
        self.calls.append(list(args))
        binary, *rest = args
        name = os.path.basename(binary)
        if name == "postconf":
            return self._postconf(rest)
        if name == "postmap":
            return self._postmap(rest)
        return 127, "", f"{binary}: not found"

    def called(self, binary: str) -> list[list[str]]:
        return [c for c in self.calls if os.path.basename(c[0]) == binary]

    # -- postconf ------------------------------------------------------------------------------------

    def _read_main_cf(self, config_dir):
        path = os.path.join(config_dir, "main.cf")
        if not os.path.exists(path):
            return None, f"postconf: fatal: open {path}: No such file or directory"
        values: dict[str, str] = {}
        last = None
        with open(path, encoding="utf-8", errors="surrogateescape", newline="") as handle:
            for number, raw in enumerate(handle, 1):
                line = raw.rstrip("\n")
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                if line[0].isspace():
                    if last is None:
                        return None, f"postconf: fatal: {path}, line {number}: text before first parameter"
                    values[last] = (values[last] + " " + line.strip()).strip()
                    continue
                if "=" not in line:
                    return None, f"postconf: fatal: {path}, line {number}: missing '=' after attribute name: {line!r}"
                name, value = line.split("=", 1)
                last = name.strip()
                values[last] = value.strip()
        return values, ""

    def _postconf(self, args):
        flags, config_dir, names = set(), None, []
        it = iter(args)
        for arg in it:
            if arg == "-c":
                config_dir = next(it)
            elif arg.startswith("-"):
                flags.update(arg[1:])
            else:
                names.append(arg)
        err = []
        if "m" in flags:  # reads main.cf first, as every postconf but -d (seen)
            if self._read_main_cf(config_dir or "/etc/postfix")[0] is None:
                return (
                    1,
                    "",
                    f"postconf: fatal: open {config_dir or '/etc/postfix'}/main.cf: No such file or directory\n",
                )
            return 0, "".join(f"{t}\n" for t in self.map_types), ""
        if "d" in flags:
            values = dict(self.defaults)
        else:
            set_values, fatal = self._read_main_cf(config_dir or "/etc/postfix")
            if set_values is None:
                return 1, "", fatal + "\n"
            if config_dir and config_dir != self.defaults["config_directory"]:
                set_values = {"config_directory": config_dir, **set_values}
            referenced = set()
            for value in set_values.values():
                referenced.update(re.findall(r"\$\{?([A-Za-z0-9_]+)", value))
            for name, value in set_values.items():
                if name not in self.defaults and name not in referenced:
                    err.append(f"postconf: warning: {config_dir}/main.cf: unused parameter: {name}={value}")
            values = set_values if "n" in flags else {**self.defaults, **set_values}
        if names:
            for name in names:
                if name not in values:
                    err.append(f"postconf: warning: {name}: unknown parameter")
            values = {n: values[n] for n in names if n in values}
        if "h" in flags:
            out = "".join(f"{v}\n" for v in values.values())
        else:
            out = "".join(f"{n} = {v}\n" if v else f"{n} =\n" for n, v in sorted(values.items()))
        return 0, out, "".join(f"{e}\n" for e in err)

    # -- postmap -------------------------------------------------------------------------------------

    def _postmap(self, args):
        config_dir = args[args.index("-c") + 1] if "-c" in args else "/etc/postfix"
        if not os.path.exists(os.path.join(config_dir, "main.cf")):
            return 1, "", f"postmap: fatal: open {config_dir}/main.cf: No such file or directory\n"
        map_type, source = args[-1].split(":", 1)
        if map_type not in self.map_types:
            return 1, "", f"postmap: fatal: unsupported dictionary type: {map_type}\n"
        if "-q" in args:
            return self._query(source, args[args.index("-q") + 1])
        if self.postmap_fails:
            return 1, "", f"postmap: fatal: open database {source}{INDEX_SUFFIX[map_type]}: Invalid argument\n"
        entries, err = {}, []
        with open(source, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                parts = line.split(None, 1)
                if len(parts) < 2:
                    err.append(f"postmap: warning: {source}, line {number}: expected format: key whitespace value")
                    continue
                entries[parts[0].lower()] = parts[1].strip()
        index = source + INDEX_SUFFIX[map_type]
        with open(index, "w", encoding="utf-8") as handle:
            json.dump({"type": map_type, "entries": entries}, handle)
        shutil.copymode(source, index)
        return 0, "", "".join(f"{e}\n" for e in err)

    @staticmethod
    def _query(source, key):
        """A pattern table as Postfix's regexp map reads it (a warning per bad line, seen on 3.7), matched in Python."""
        err, found = [], None
        with open(source, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip() or line.startswith("#"):
                    continue
                match = re.fullmatch(r"/((?:[^/\\]|\\.)*)/([imx]*)(?:\s+(.*))?\n?", line)
                if not match:
                    err.append(f"postmap: warning: regexp map {source}, line {number}: ignoring unrecognized request")
                    continue
                try:
                    pattern = re.compile(match.group(1), 0 if "i" in match.group(2) else re.IGNORECASE)
                except re.error:
                    err.append(f"postmap: warning: regexp map {source}, line {number}: Invalid regular expression")
                    continue
                if found is None and pattern.search(key):
                    found = match.group(3) or ""
        return (1, "", "".join(f"{e}\n" for e in err)) if found is None else (0, found + "\n", "")


def read_index(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)
