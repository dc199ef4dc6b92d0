# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: parse_relayhost
short_description: Parse a Postfix relayhost string
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Turns a Postfix C(relayhost) value into a list of destinations, in the order Postfix tries them.
  - Brackets turn MX lookup off; IP addresses must be bracketed, IPv6 ones written C([ipv6:ADDRESS]).
  - Raises an error naming the problem for a port inside the brackets, an unbracketed IP address, an IPv6
    address without C(ipv6:), a port outside 1-65535 or an unknown service name, unbalanced brackets, an
    invalid host name, or any control character (a newline included).
options:
  _input:
    description: The relayhost value. Destinations may be separated by commas and/or spaces.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Show where Postfix sends mail
  ansible.builtin.debug:
    msg: "{{ '[relay.example.org]:587, [ipv6:2001:db8::25]:submissions' | smtp.relay.parse_relayhost }}"
  # [{"host": "relay.example.org", "port": 587, "mx_lookup": false, "is_ip": false},
  #  {"host": "2001:db8::25", "port": 465, "mx_lookup": false, "is_ip": true}]
"""

RETURN = r"""
_value:
  description: One entry per destination.
  type: list
  elements: dict
  contains:
    host:
      description: Host name or bare IP address.
      type: str
    port:
      description: TCP port; 25 when absent, service names resolved (C(submission) is 587, C(submissions) 465).
      type: int
    mx_lookup:
      description: Whether Postfix looks up MX records (the host was not bracketed).
      type: bool
    is_ip:
      description: Whether the host is an IP address.
      type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import parse_relayhost


def parse_relayhost_filter(value):
    try:
        return parse_relayhost(value)
    except SmtpRelayError as e:
        raise AnsibleFilterError(e.msg) from e


class FilterModule:
    def filters(self):
        return {"parse_relayhost": parse_relayhost_filter}
