#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postfix_apply
short_description: Apply a whole Postfix relay plan in one call - maps, mail name, main.cf, service
version_added: 1.0.0
description:
  - Used by the C(smtp.relay.postfix) role so that a run that changes nothing costs one remote module execution
    per host. Checks that the packages are installed, writes the lookup tables (as M(smtp.relay.postfix_map)),
    the mail name file, every main.cf parameter in one staged, validated, atomic write (as
    M(smtp.relay.postconf)), then enables and starts the service, reloading it after a main.cf change or
    restarting it when a changed parameter needs a restart (such as C(inet_interfaces)).
  - When packages are missing nothing is touched and RV(missing_packages) lists them; install them and call again
    without O(packages).
  - Where the package left no C(main.cf) (Debian's C(No configuration) install), an empty one is created first,
    because Postfix's tools refuse to work without it.
  - Every input is checked before anything is written (every table, the mail name, and main.cf, validated by
    C(postconf) in a staging copy), so a refused input leaves the host as it was. A changed main.cf parameter
    that names a lookup table type this Postfix lacks (C(postconf -m)), such as V(pcre) without C(postfix-pcre),
    is refused naming the parameter and the package to install.
  - Values of O(secret_maps), and of O(main_cf) parameters whose name marks them as secret, never appear in the
    output or the diff; the tables of O(secret_maps) are mode V(0600).
  - One run at a time per host. While it writes, the module holds an exclusive lock on
    C(/run/lock/smtp-relay-postfix-<config_dir>.lock). A second run against the same host waits for it, so the
    host ends with one run's complete set of files, never a mix of two runs. It fails, saying so, after
    5 minutes. Check mode writes nothing and does not wait.
author: smtp.relay contributors (@smtp-relay)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.writes_files
  - smtp.relay.attributes.action_group
attributes:
  check_mode:
    details: On a host where Postfix is still to be installed, the changes are predicted, not validated.
  diff_mode:
    details: One diff per changed file; secret values masked.
  platform:
    support: full
    details: Needs the Postfix binaries; systemd when the host runs it, else Postfix's own start and reload.
options:
  main_cf:
    description: main.cf parameters (name to value; V(null) removes one), as for M(smtp.relay.postconf).
    type: dict
    required: true
  maps:
    description:
      - Lookup tables to write under O(config_dir), each C({name, entries, state, type}) (C(state) V(present) or
        V(absent), default V(present); C(type) the table's own type, default O(map_type)).
      - A V(regexp) or V(pcre) table takes C(entries) as a list of C({pattern, action}) in the order Postfix tries
        them, and is read by Postfix on a staged copy first (as M(smtp.relay.postfix_map) does).
      - Other keys, and a table given twice (here or in O(secret_maps)), are refused.
    type: list
    elements: dict
    default: []
  secret_maps:
    description: Lookup tables whose values are credentials, as O(maps); never shown.
    type: list
    elements: dict
    default: []
  map_type:
    description: Type of the tables that give none. Default, the host's C(default_database_type).
    type: str
    choices: [hash, btree, lmdb, cdb, texthash, regexp, pcre]
  mailname_file:
    description:
      - Absolute path of the mail name file to write (C(/etc/mailname) on Debian), in a directory that exists.
        Nothing is written without it.
    type: path
  mailname:
    description: Content of O(mailname_file), one host name such as V(example.org); anything else is refused.
    type: str
  alias_databases:
    description:
      - Alias databases to build, as C(TYPE:/path) such as V(hash:/etc/aliases), with C(postalias) when the indexed
        file is missing or older than its source (what C(newaliases) does), before main.cf is written; the service
        is then reloaded. A source that does not exist is left alone.
      - The role gives V(hash:/etc/aliases) in satellite mode, whose local delivery defers every mail without it.
    type: list
    elements: str
    default: []
  service:
    description: Service to enable and start (reload or restart after a main.cf change). Empty, none.
    type: str
    default: postfix
  packages:
    description: Packages that must be installed first; when any is missing nothing else is done.
    type: list
    elements: str
    default: []
  config_dir:
    description: Postfix configuration directory.
    type: path
    default: /etc/postfix
seealso:
  - module: smtp.relay.postconf
  - module: smtp.relay.postfix_map
"""

EXAMPLES = r"""
- name: Apply the relay settings in one call
  smtp.relay.postfix_apply:
    packages: [postfix, libsasl2-modules]
    main_cf:
      relayhost: "[smtp.example.org]:587"
      smtp_sasl_auth_enable: true
      smtp_sasl_password_maps: hash:/etc/postfix/sasl_passwd
    secret_maps:
      - name: sasl_passwd
        entries:
          "[smtp.example.org]:587": "user:{{ vault_relay_password }}"
  register: applied
"""

RETURN = r"""
missing_packages:
  description: Packages that are not installed; when not empty nothing else was done.
  returned: always
  type: list
  elements: str
changed_parts:
  description: What changed (or would change in check mode) - table names, the mail name file, C(main.cf) and
    C(service ACTION) entries.
  returned: always
  type: list
  elements: str
  sample: [sasl_passwd, main.cf, service reload]
main_cf:
  description: C(changed_parameters) and C(restart_required) of the main.cf step.
  returned: when no package is missing
  type: dict
service:
  description: C(active) and C(enabled) before the call, C(systemd), and the C(actions) taken.
  returned: when no package is missing and O(service) is set
  type: dict
diff:
  description: One entry per changed file (shown with C(--diff)).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict, check_type_list

from ansible_collections.smtp.relay.plugins.module_utils._postfix.apply import apply_plan
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.maps import MAP_TYPES
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.secrets import hiding, setting_secrets, table_secrets


def _secrets(raw: dict) -> set[str]:
    return setting_secrets(raw.get("main_cf"), check_type_dict) | table_secrets(
        raw.get("secret_maps"), check_type_dict, check_type_list
    )


def main():
    # The values of secret_maps and of secret-named main_cf parameters are hidden from every output, Ansible's own
    # refusals included (module_utils/_postfix/secrets.py says how).
    module = hiding(AnsibleModule, _secrets)(
        argument_spec={
            "main_cf": {"type": "dict", "required": True},
            "maps": {"type": "list", "elements": "dict", "default": []},
            # Only the entries' values are secret (a no_log option would hide every word in it, the table names and
            # states included).
            "secret_maps": {"type": "list", "elements": "dict", "default": [], "no_log": False},
            "map_type": {"type": "str", "choices": list(MAP_TYPES)},
            "mailname_file": {"type": "path"},
            "mailname": {"type": "str"},
            "alias_databases": {"type": "list", "elements": "str", "default": []},
            "service": {"type": "str", "default": "postfix"},
            "packages": {"type": "list", "elements": "str", "default": []},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = apply_plan(
            PostconfRunner.for_module(module),
            main_cf=params["main_cf"],
            maps=params["maps"],
            secret_maps=params["secret_maps"],
            map_type=params["map_type"],
            mailname_file=params["mailname_file"],
            mailname=params["mailname"],
            alias_databases=params["alias_databases"],
            service=params["service"],
            packages=params["packages"],
            config_dir=params["config_dir"],
            check_mode=module.check_mode,
        )
    except SmtpRelayError as e:
        module.fail_json(msg=e.msg, **e.details)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
