#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: relay_info
short_description: Read a host's effective relay settings, map state, service state and queue
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Returns the host's effective Postfix relay settings as structured facts - the relayhost (raw and parsed), TLS
    level and mode, wrappermode, CA file, SNI, SASL, whether the SASL map has a key written exactly like the
    relayhost (keys only, never a password), the lookup tables (present, built, fresher than their source, file
    modes), C(inet_interfaces), C(mydestination), C(myorigin), the mode the host looks like (null client,
    satellite or other), the Postfix version, whether Postfix runs, and the queue from C(postqueue -j).
  - "With O(expect), compares these facts with given values and fails listing every mismatch as
    C(field: expected X, found Y)."
  - Read-only, runs fully in check mode. On a host without Postfix it returns C(postfix_installed=false).
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.read_only
  - smtp.relay.attributes.action_group
  - smtp.relay.options.read_config_dir
options:
  expect:
    description:
      - Expected values, keyed by a field of RV(relay) (a dotted path reaches inside, for example
        V(queue.deferred)). An unknown field is refused.
      - V(relayhost) is compared as parsed (V([a]:submission) equals V([a]:587)); booleans accept V(yes)/V(no);
        a list is compared with the field's words in order; V(myorigin) also matches its expanded value.
    type: dict
    default: {}
notes:
  - Reading the SASL map and the queue needs root (C(become)).
seealso:
  - module: smtp.relay.relay_check
"""

EXAMPLES = r"""
- name: Read the relay facts
  smtp.relay.relay_info:
  become: true
  register: info

- name: Fail when a server drifted from the inventory
  smtp.relay.relay_info:
    expect:
      relayhost: "[smtp.example.org]:587"
      tls_security_level: secure
      sasl_enabled: true
      sasl_key_matches: true
      mode: null_client
      service_running: true
      queue.deferred: 0
  become: true
"""

RETURN = r"""
relay:
  description: The host's relay facts.
  returned: always
  type: dict
  contains:
    postfix_installed:
      description: Whether C(postconf) runs on the host. When false only C(relayhost), C(relayhosts), C(mode) follow.
      type: bool
    postfix_version:
      description: The C(mail_version) of Postfix.
      type: str
    relayhost:
      description: C(relayhost) as written in main.cf.
      type: str
    relayhosts:
      description: C(relayhost) parsed into C(host), C(port), C(mx_lookup), C(is_ip); empty when unparsable.
      type: list
      elements: dict
    relayhost_error:
      description: Why C(relayhost) does not parse, or null.
      type: str
    tls_security_level:
      description: Effective C(smtp_tls_security_level) (the obsolete C(smtp_use_tls)/C(smtp_enforce_tls) applied).
      type: str
    tls_mode:
      description: V(starttls), V(implicit) or V(none), as the SMTP client would talk to the relay.
      type: str
    tls_wrappermode:
      description: C(smtp_tls_wrappermode).
      type: bool
    tls_ca_file:
      description: C(smtp_tls_CAfile), or null.
      type: str
    tls_ca_path:
      description: C(smtp_tls_CApath), or null.
      type: str
    tls_servername:
      description: C(smtp_tls_servername) (the SNI Postfix sends), or null for none.
      type: str
    sasl_enabled:
      description: C(smtp_sasl_auth_enable).
      type: bool
    sasl_password_maps:
      description: C(smtp_sasl_password_maps).
      type: str
    sasl_security_options:
      description: C(smtp_sasl_security_options), expanded.
      type: str
    sasl_tls_security_options:
      description: C(smtp_sasl_tls_security_options), expanded.
      type: str
    sasl_key_matches:
      description:
        - Whether a key of the SASL map sources is written exactly like a relayhost destination (case-insensitive);
          null when a map source cannot be read or there is no map or relayhost.
      type: bool
    maps:
      description:
        - One entry per lookup table in C(smtp_sasl_password_maps), C(sender_canonical_maps), C(smtp_generic_maps),
          C(canonical_maps), C(recipient_canonical_maps), C(sender_dependent_relayhost_maps),
          C(smtp_tls_policy_maps) - C(parameter), C(map), C(type), C(path), C(file) (false for non-file types),
          C(exists), C(mode) (octal text), C(world_readable), C(index), C(index_exists), C(index_mode), C(fresh)
          (built and not older than the source).
      type: list
      elements: dict
    inet_interfaces:
      description: C(inet_interfaces).
      type: str
    inet_protocols:
      description: C(inet_protocols).
      type: str
    mydestination:
      description: C(mydestination).
      type: str
    myorigin:
      description: C(myorigin) as written.
      type: str
    myorigin_expanded:
      description: C(myorigin) with C($name) references expanded.
      type: str
    myhostname:
      description: C(myhostname).
      type: str
    local_transport:
      description: C(local_transport).
      type: str
    compatibility_level:
      description: C(compatibility_level).
      type: str
    configured_parameters:
      description: Names set in main.cf (C(postconf -n)).
      type: list
      elements: str
    mode:
      description:
        - V(null_client) (relayhost set, loopback-only, empty C(mydestination)), V(satellite) (relayhost set,
          otherwise) or V(other) (no relayhost).
      type: str
    service_running:
      description: Whether C(postfix status) says Postfix runs; null when it cannot tell.
      type: bool
    queue:
      description:
        - From C(postqueue -j) - counts C(active), C(deferred), C(hold), C(incoming), C(maildrop), C(total);
          C(oldest_deferred_age) in seconds (null when none); C(deferral_reasons), the most common C(delay_reason)
          texts as C({reason, count}). Null when the queue cannot be read (Postfix stopped).
      type: dict
    queue_error:
      description: Why the queue could not be read, or null.
      type: str
mismatches:
  description: "Each difference from O(expect) as C(field: expected X, found Y)."
  returned: always
  type: list
  elements: str
msg:
  description: A one-line summary.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import PostconfRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.info import relay_info


def main():
    module = AnsibleModule(
        argument_spec={
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "expect": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    try:
        result = relay_info(PostconfRunner.for_module(module), module.params["config_dir"], module.params["expect"])
    except SmtpRelayError as e:
        module.fail_json(msg=e.msg, changed=False, **e.details)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
