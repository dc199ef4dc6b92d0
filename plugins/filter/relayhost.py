# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: relayhost
short_description: Build a Postfix relayhost string
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Turns a relay description (or a list of them, tried in order) into a Postfix C(relayhost) value.
  - Host names are bracketed unless O(_input.mx_lookup) is true; IP addresses are always bracketed,
    IPv6 ones as C([ipv6:ADDRESS]). A list is joined with C(", ").
  - The inverse of P(smtp.relay.parse_relayhost#filter); the same invalid values are refused.
options:
  _input:
    description: A relay, or a list of relays.
    type: raw
    required: true
    suboptions:
      host:
        description: Host name or IP address.
        type: str
        required: true
      port:
        description: TCP port (number or service name). Left out of the result when not given (Postfix then uses 25).
        type: raw
      mx_lookup:
        description:
          - Let Postfix look up MX records for O(_input.host) (no brackets).
          - Almost never wanted for a smarthost.
          - Read as Ansible reads a boolean (V(false), V(no), V(off), V(0) are false); any other value is refused.
        type: bool
        default: false
"""

EXAMPLES = r"""
- name: Relayhost for a campus relay on the submission port
  ansible.builtin.set_fact:
    relayhost: "{{ {'host': 'smtp.campus.example.edu', 'port': 587} | smtp.relay.relayhost }}"
  # [smtp.campus.example.edu]:587

- name: Two relays, tried in order
  ansible.builtin.set_fact:
    relayhost: "{{ relays | smtp.relay.relayhost }}"
  vars:
    relays:
      - {host: relay1.example.org, port: 587}
      - {host: "2001:db8::25", port: 587}
  # [relay1.example.org]:587, [ipv6:2001:db8::25]:587
"""

RETURN = r"""
_value:
  description: The relayhost value for main.cf.
  type: str
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import described, format_relayhost


def _with_boolean_mx_lookup(relay):
    """mx_lookup read with Ansible's boolean rules, as the role reads postfix_relay_mx_lookup: an ini inventory or a
    template gives the text "false", which Python's truth would read as true."""
    if not isinstance(relay, dict) or relay.get("mx_lookup") is None:
        return relay
    try:
        return {**relay, "mx_lookup": boolean(relay["mx_lookup"], strict=True)}
    except TypeError:
        given = described(relay["mx_lookup"])
        raise AnsibleFilterError(
            f"relay mx_lookup {given} is not a boolean; accepted: true/false, yes/no, on/off, 1/0"
        ) from None


def relayhost_filter(value):
    relays = [_with_boolean_mx_lookup(r) for r in value] if isinstance(value, list) else _with_boolean_mx_lookup(value)
    try:
        return format_relayhost(relays)
    except SmtpRelayError as e:
        raise AnsibleFilterError(e.msg) from e


class FilterModule:
    def filters(self):
        return {"relayhost": relayhost_filter}
