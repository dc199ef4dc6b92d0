#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postfix_map
short_description: Write a Postfix lookup table and build its indexed form safely
version_added: 1.0.0
description:
  - Writes a lookup table such as C(sasl_passwd), C(sender_canonical) or C(generic) from a mapping,
    one C(key value) line per entry in key order, and builds its indexed form with C(postmap).
  - V(regexp) and V(pcre) tables (header checks, for example) are written in the order given, one
    C(pattern action) line per entry, and get no index. Each pattern must look like C(/regex/flags) (or
    C(!/regex/flags)); then, on every run, Postfix itself reads a staged copy (C(postmap -q)) before the
    table is put in place, and a line it warns about, or a type it lacks (V(pcre) without C(postfix-pcre)),
    is refused, naming the entry or the package, with nothing on the host changed.
  - A table whose file others may not read (such as a credentials table written with O(secret=true)) is
    shown masked in the diff, whatever O(secret) says, so that removing or rewriting it prints no credential.
  - The index is built only when the content changed or the indexed file is missing or older than its
    source. The build happens on a hidden temporary copy in the same directory, then the index and the
    source are renamed into place, so Postfix never reads a half-built table.
  - With O(secret=true) the source and the index are mode V(0600), owned by root, values never appear in
    the diff, and no backup copy is ever made.
  - Keys with whitespace or control characters, and values with a newline, a control character or
    leading/trailing whitespace are refused, naming the key.
author: smtp.relay contributors (@smtp-relay)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.writes_files
  - smtp.relay.attributes.action_group
attributes:
  diff_mode:
    details: Values are masked when O(secret=true); keys are shown.
  platform:
    support: full
    details: Needs the Postfix C(postmap) and C(postconf) binaries, except for V(texthash) tables.
options:
  name:
    description:
      - File name of the table under O(config_dir), for example V(sasl_passwd).
      - Exactly one of O(name) and O(path) is required.
    type: str
  path:
    description:
      - Absolute path of the table's source file.
    type: path
  entries:
    description:
      - Lookup key to value. Keys are one word; Postfix folds them to lower case, so two keys that differ
        only in case are refused.
      - For O(type=regexp) and O(type=pcre), a list of C({pattern, action}) (clearer, and a pattern may
        appear in any order), or a mapping of pattern to action; either way the order given is the order
        Postfix tries them in.
      - Required when O(state=present).
    type: raw
  type:
    description:
      - Lookup table type. Default is the host's C(default_database_type) (read with
        C(postconf -h default_database_type)), usually V(hash) or V(lmdb).
      - V(texthash), V(regexp) and V(pcre) tables are read by Postfix directly and get no index.
      - V(pcre) needs Postfix's pcre support (Debian, EL - C(postfix-pcre)); V(regexp) needs nothing more.
    type: str
    choices: [hash, lmdb, btree, cdb, texthash, regexp, pcre]
  secret:
    description:
      - The table holds credentials (such as C(sasl_passwd)). Files become mode V(0600), owned by root, and
        values are masked in the diff and the result.
      - The values never appear in the module's output, the echo of its arguments included. Also set C(no_log) on
        the task so that the controller does not show them either (in a loop's item label, for example).
    type: bool
    default: false
  config_dir:
    description:
      - The Postfix configuration directory, passed to C(postmap -c) and used to resolve O(name).
    type: path
    default: /etc/postfix
  state:
    description:
      - V(absent) removes the source and any indexed file (C(.db), C(.lmdb), C(.cdb)) next to it.
    type: str
    choices: [present, absent]
    default: present
notes:
  - The module never writes its arguments to the host's journal, since they may hold credentials.
seealso:
  - module: smtp.relay.postconf
  - name: Postfix lookup table types
    description: The DATABASE_README of Postfix.
    link: https://www.postfix.org/DATABASE_README.html
"""

EXAMPLES = r"""
- name: Store the relay credentials
  smtp.relay.postfix_map:
    name: sasl_passwd
    secret: true
    entries:
      "[smtp.example.org]:587": "{{ relay_user }}:{{ relay_password }}"
  register: relay_sasl_map
  no_log: true

- name: Point Postfix at the table
  smtp.relay.postconf:
    settings:
      smtp_sasl_password_maps: "{{ relay_sasl_map.map }}"

- name: Rewrite local senders
  smtp.relay.postfix_map:
    name: sender_canonical
    type: texthash
    entries:
      root: noreply@example.org

- name: Strip headers that name internal hosts from outgoing mail (smtp_header_checks)
  smtp.relay.postfix_map:
    name: smtp_header_checks
    type: regexp
    entries:
      - pattern: /^X-Internal-Host:/
        action: IGNORE
      - pattern: /^X-Originating-IP:/
        action: "REPLACE X-Originating-IP: [redacted]"
"""

RETURN = r"""
path:
  description: Path of the table's source file.
  returned: always
  type: str
  sample: /etc/postfix/sasl_passwd
map:
  description: The C(type:path) reference to put in C(main.cf).
  returned: always
  type: str
  sample: hash:/etc/postfix/sasl_passwd
diff:
  description: The source before and after; with O(secret=true) keys only, values masked.
  returned: always
  type: dict
  sample:
    before_header: /etc/postfix/sasl_passwd
    after_header: /etc/postfix/sasl_passwd
    before: "[smtp.example.org]:587 ********\n"
    after: "[smtp.example.org]:587 ******** (changed)\n"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import MAP_TYPES, ensure_map
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.secrets import entry_secrets, flagged, hiding


def _secrets(raw: dict) -> set[str]:
    return entry_secrets(raw.get("entries"), check_type_dict) if flagged(raw.get("secret")) else set()


def _entries(entries):
    """Text is read as Ansible reads a dict option ("key=value ..." or JSON); mappings and lists go on as given."""
    if not isinstance(entries, str):
        return entries
    try:
        return check_type_dict(entries)
    except TypeError as e:
        raise SmtpRelayError(f"entries: {e}", field="entries") from None


def main():
    # A secret table's values are hidden from every output, Ansible's own refusals included
    # (module_utils/_postfix/secrets.py says how).
    module = hiding(AnsibleModule, _secrets)(
        argument_spec={
            "name": {"type": "str"},
            "path": {"type": "path"},
            # A mapping, or a list of {pattern, action} for regexp and pcre tables (checked in maps.py).
            "entries": {"type": "raw"},
            "type": {"type": "str", "choices": list(MAP_TYPES)},
            "secret": {"type": "bool", "default": False, "no_log": False},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        mutually_exclusive=[("name", "path")],
        required_one_of=[("name", "path")],
        required_if=[("state", "present", ("entries",))],
        supports_check_mode=True,
        # Not logged to the journal by default (the controller's no_log setting decides in the end).
        no_log=True,
    )
    params = module.params
    runner = PostconfRunner.for_module(module)
    try:
        result = ensure_map(
            runner,
            entries=_entries(params["entries"]),
            name=params["name"],
            path=params["path"],
            map_type=params["type"],
            secret=params["secret"],
            config_dir=params["config_dir"],
            state=params["state"],
            check_mode=module.check_mode,
        )
    except SmtpRelayError as e:
        module.fail_json(msg=e.msg, **e.details)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
