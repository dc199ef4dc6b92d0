# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: relay_settings
short_description: Plan the Postfix settings of the smtp.relay.postfix role
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Turns the role's C(postfix_*) variables into the main.cf settings, the SASL map key and the sender
    rewriting map the role applies. The role calls it before touching a host, so that bad input is refused
    with a message naming the variable.
  - Secrets are not inputs; pass C(postfix_relay_password_given) (bool) instead of the password.
options:
  _input:
    description: The role variables (see the role's argument specification).
    type: dict
    required: true
  local_names:
    description: The host's own names; mail from C(user@NAME) is rewritten to C(postfix_sender_address).
    type: list
    elements: str
    default: [localhost]
  ca_default:
    description: CA bundle used for certificate verification when C(postfix_relay_ca_file) is empty.
    type: str
    default: /etc/ssl/certs/ca-certificates.crt
"""

EXAMPLES = r"""
- name: Show what the role would write to main.cf
  ansible.builtin.debug:
    msg: "{{ role_vars | smtp.relay.relay_settings }}"
  vars:
    role_vars:
      postfix_relay_host: smtp.campus.example.edu
      postfix_relay_port: 587
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    main_cf:
      description: main.cf parameters (without the map references, which depend on the host's database type).
      type: dict
    relayhost:
      description: The relayhost value.
      type: str
    tls:
      description: The TLS mode, C(starttls), C(implicit) or C(none).
      type: str
    username:
      description: SASL user name, empty without authentication.
      type: str
    sasl_key:
      description: The SASL map key, written exactly like the first relayhost destination.
      type: str
    sender_canonical:
      description: Entries of the sender rewriting map.
      type: dict
    sender_domains:
      description: Domains the rewritten senders end up in.
      type: list
      elements: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayconf import build


def relay_settings(spec, local_names=("localhost",), ca_default="/etc/ssl/certs/ca-certificates.crt"):
    try:
        return build(dict(spec), list(local_names), ca_default)
    except SmtpRelayError as e:
        raise AnsibleFilterError(e.msg) from e


class FilterModule:
    def filters(self):
        return {"relay_settings": relay_settings}
