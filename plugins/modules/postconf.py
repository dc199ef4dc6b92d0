#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postconf
short_description: Set and remove many Postfix main.cf parameters in one validated, atomic step
version_added: 1.0.0
description:
  - Sets and removes any number of C(main.cf) parameters in one call.
  - The new C(main.cf) is first written to a staging copy of the configuration directory and checked
    with C(postconf -n -c STAGING). A syntax error, or an C(unused parameter) warning for a name this
    call sets (a misspelt name such as V(relayhst)), fails the task and leaves the live file
    byte-identical.
  - Booleans other than V(yes)/V(no), values with a newline or control character, and names Postfix does
    not know are refused before anything is written.
  - The live file is replaced atomically, keeping its comments, order, mode, owner and SELinux context.
    Changed parameters are rewritten in place, new ones appended, removed ones deleted.
  - When C(main.cf) does not exist yet (Debian's C(No configuration) install), it is created.
author: smtp.relay contributors (@smtp-relay)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.writes_files
  - smtp.relay.attributes.action_group
attributes:
  check_mode:
    details: The change is planned and validated in a staging copy; the live file is not written.
  diff_mode:
    details: Values of parameters whose name marks them as secret are masked.
  platform:
    support: full
    details: Needs the Postfix C(postconf) binary on the managed host.
options:
  settings:
    description:
      - Parameter name to value. A V(null) value removes the parameter from C(main.cf).
      - Strings and integers are written as they are, booleans as V(yes)/V(no), lists joined with V(", ").
      - Leading and trailing whitespace is dropped, as Postfix would.
    type: dict
    required: true
  config_dir:
    description:
      - The Postfix configuration directory holding C(main.cf) and C(master.cf).
    type: path
    default: /etc/postfix
  allow_unknown:
    description:
      - Accept names Postfix would report as C(unused parameter), such as a user-defined parameter
        that is only referenced from C(master.cf) or another file.
    type: bool
    default: false
notes:
  - Most changes take effect on C(postfix reload); RV(restart_required) says when a full restart is needed.
seealso:
  - module: smtp.relay.postfix_map
  - name: Postfix configuration parameters
    description: The postconf(5) manual.
    link: https://www.postfix.org/postconf.5.html
"""

EXAMPLES = r"""
- name: Make the host a null client that relays through the campus relay
  smtp.relay.postconf:
    settings:
      relayhost: "[relay.example.org]:587"
      inet_interfaces: loopback-only
      mydestination: ""
      smtp_tls_security_level: encrypt
      smtp_sasl_auth_enable: true
      smtp_sasl_password_maps: hash:/etc/postfix/sasl_passwd
      smtp_sasl_security_options: [noanonymous]
      smtp_generic_maps: null
  register: relay_postconf

- name: Restart Postfix when a changed parameter is only read at start
  ansible.builtin.service:
    name: postfix
    state: restarted
  when: relay_postconf.restart_required

- name: Use a user-defined parameter referenced from master.cf
  smtp.relay.postconf:
    settings:
      relay_rate_tier: 5s
    allow_unknown: true
"""

RETURN = r"""
changed_parameters:
  description: Names of the parameters whose value this call changed (or would change, in check mode).
  returned: always
  type: list
  elements: str
  sample: [relayhost, inet_interfaces]
restart_required:
  description:
    - Whether a changed parameter is only read when Postfix starts (such as C(inet_interfaces) or
      C(inet_protocols)), so that C(postfix reload) is not enough.
  returned: always
  type: bool
  sample: true
diff:
  description: C(main.cf) before and after, secret values masked.
  returned: always
  type: dict
  sample:
    before_header: /etc/postfix/main.cf
    after_header: /etc/postfix/main.cf
    before: "relayhost =\n"
    after: "relayhost = [relay.example.org]:587\n"
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import apply
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.secrets import hiding, setting_secrets


def _secrets(raw: dict) -> set[str]:
    return setting_secrets(raw.get("settings"), check_type_dict)


def main():
    # The values of secret-named parameters are hidden from every output, Ansible's own refusals included
    # (module_utils/_postfix/secrets.py says how).
    module = hiding(AnsibleModule, _secrets)(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "allow_unknown": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    settings = module.params["settings"]
    runner = PostconfRunner.for_module(module)
    try:
        result = apply(
            runner,
            settings,
            config_dir=module.params["config_dir"],
            allow_unknown=module.params["allow_unknown"],
            check_mode=module.check_mode,
        )
    except SmtpRelayError as e:
        module.fail_json(msg=e.msg, **e.details)
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
