#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: allowlist_request
short_description: Build, check and render a relay allowlist request for one server
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Collects what relay owners ask for before they admit a server by address. That is the FQDN, purpose, egress
    IPv4 and IPv6 addresses, owning team and contact, and optionally evidence that the server is kept patched.
  - Defaults come from the host. The FQDN is the host's own idea of it (as C(hostname -f)). The egress addresses
    are the source addresses the kernel picks towards the relay's addresses, honouring Postfix's
    C(smtp_bind_address), C(smtp_bind_address6) and C(inet_protocols). Finding them sends no traffic (a UDP
    C(connect) only selects a route).
  - Checks the request (FQDN syntax, forward-confirmed FQDN, reverse DNS, unusable and non-public addresses,
    missing IPv6, evidence) and fails when a check has a status in O(fail_on) (by default, when a check failed),
    unless O(report_only=true).
  - A request names hosts, not networks of the Internet. It is refused, whatever O(report_only) and O(fail_on) say,
    when it holds an IPv4 network shorter than /24 (more than 256 addresses) or an IPv6 network shorter than /48
    (such as V(0.0.0.0/0) or V(::/0)), or an unspecified, loopback, link-local or multicast address or network, or
    any address in IPv4-mapped IPv6 form (V(::ffff:127.0.0.1)); given addresses are refused before anything is
    looked up, detected ones with a failed C(address.unusable) or C(address.too_broad) check. O(dest) is then not
    written.
  - Renders the request as a mail, Markdown, JSON, YAML or a CSV row, and writes O(dest) only when its content
    changed. Renderings hold no timestamps, so repeated runs report no change.
options:
  fqdn:
    description:
      - Fully qualified name of the server.
      - Default is the host's own FQDN, which is then checked rather than refused when it is not qualified.
    type: str
  purpose:
    description: What the server is for, in one line.
    type: str
    required: true
  ipv4:
    description:
      - IPv4 egress address(es) or network(s) in CIDR notation, for hosts behind NAT.
      - Networks may be /24 (256 addresses) at most. Unspecified, loopback, link-local and multicast addresses are
        refused.
      - When given, no IPv4 address is detected.
    type: list
    elements: str
    default: []
  ipv6:
    description:
      - IPv6 egress address(es) or network(s) in CIDR notation.
      - Networks may be /48 at most. Unspecified, loopback, link-local and multicast addresses are refused, and so
        is the IPv4-mapped form of any IPv4 address (give it under O(ipv4)).
      - When given, no IPv6 address is detected.
    type: list
    elements: str
    default: []
  egress:
    description:
      - Egress addresses or networks of either family, such as a platform's published egress ranges.
      - Added to O(ipv4) and O(ipv6), with the same limits. When given, no address of either family is detected.
    type: list
    elements: str
    default: []
  team:
    description: The team that owns the server.
    type: str
    required: true
  contact:
    description:
      - Who to ask about the server, a mail address (V(mail-ops@example.org)) or a named chat channel (V(#mail-ops),
        V(slack:#mail-ops), V(matrix:#mail-ops:example.org)).
    type: str
    required: true
  monitoring:
    description: How the server is monitored, for relays that ask; shown in the request when given.
    type: str
  relay_host:
    description:
      - The relay, as a host name, an IP address or a Postfix relayhost string (V([relay.example.org]:587)).
      - Its addresses decide the egress addresses. Default is Postfix's C(relayhost) on the host; without either
        the default route's source addresses are used, with a warning.
    type: str
  relay_public:
    description:
      - Whether the relay is on the public internet, so that the server's non-public addresses are reported as
        failures (the relay would see a NAT address instead).
      - Default is true when one of the relay's addresses is a public one.
    type: bool
  prefer_ipv6:
    description: Warn when the request has no IPv6 address.
    type: bool
    default: false
  format:
    description: The rendering returned in RV(rendered) and written to O(dest).
    type: str
    choices: [mail, markdown, json, yaml, csv]
    default: mail
  subject:
    description: Subject of the mail rendering.
    type: str
    default: "Email sending: allowlist server"
  dest:
    description:
      - File to write the rendering to, on the managed host. Written atomically and only when its content changed.
      - Its directory must exist. A file it replaces keeps its mode, owner and SELinux context; a new one is
        mode V(0644).
    type: path
  evidence:
    description:
      - Add what relay owners ask as evidence of patching, read from the host (Debian family). That is whether
        automatic security updates are enabled and when the package lists were last updated.
    type: bool
    default: false
  max_package_list_age:
    description:
      - Days after which package lists count as stale (a warning), with O(evidence=true); 0 to 3650.
    type: int
    default: 7
  nameservers:
    description:
      - IP addresses of DNS servers for the FQDN, reverse and relay lookups, queried with dnspython.
      - Default is the host's own resolver, which also reads C(/etc/hosts); give name servers to check what DNS
        publishes.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds to wait for each DNS lookup through O(nameservers), more than 0 and at most 300.
    type: float
    default: 5.0
  report_only:
    description:
      - Render and return the request whatever the checks say, instead of failing; the same as O(fail_on=[]), and
        it overrides O(fail_on).
      - Requests that name networks of the Internet or addresses a relay never sees are refused all the same.
    type: bool
    default: false
  fail_on:
    description:
      - Check statuses that make the task fail, with RV(request), RV(checks), RV(valid) and RV(verdict) in the
        failed result; nothing is rendered or written then.
      - V([fail]) fails when a check failed. Add V(unknown) to fail when DNS did not answer (a request that could
        not be checked), and V(warn) to fail on warnings too. V([]) renders the request whatever the checks say.
    type: list
    elements: str
    choices: [fail, warn, unknown]
    default: [fail]
  config_dir:
    description: Postfix configuration directory to read settings from; default is Postfix's own.
    type: path
requirements:
  - dnspython, only when O(nameservers) is given.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.writes_files
  - smtp.relay.attributes.action_group
  - smtp.relay.options.dns_port
attributes:
  check_mode:
    details: Everything is read and checked; O(dest) is not written.
notes:
  - The request is checked against what DNS says; a check with a status in O(fail_on) makes the task fail, with
    RV(checks) in the result, so that a wrong request is not sent.
  - The CSV rendering puts a single quote before any value starting with C(=), C(+), C(-), C(@), a tab or a
    carriage return, so that a spreadsheet shows it instead of running it as a formula.
seealso:
  - module: smtp.relay.relay_check
"""

EXAMPLES = r"""
- name: Render this server's request as a mail, taking FQDN and egress addresses from the host
  smtp.relay.allowlist_request:
    purpose: Application server sending order confirmations
    team: Shop platform
    contact: shop-ops@example.org
    relay_host: "[smtp.agency.example]:587"
  register: allowlist

- name: A host behind NAT, checked against given name servers, written as Markdown
  smtp.relay.allowlist_request:
    fqdn: app1.example.org
    purpose: Monitoring alerts
    team: Operations
    contact: "slack:#ops-mail"
    egress: [203.0.113.17]
    nameservers: [192.0.2.53]
    evidence: true
    format: markdown
    dest: /root/allowlist-request.md

- name: Only report problems (warnings and failures stay in the result)
  smtp.relay.allowlist_request:
    purpose: Batch jobs
    team: Data
    contact: data@example.org
    report_only: true
  register: allowlist

- name: Do not write a request that DNS could not confirm either
  smtp.relay.allowlist_request:
    purpose: Batch jobs
    team: Data
    contact: data@example.org
    nameservers: [192.0.2.53]
    fail_on: [fail, unknown]
    format: csv
    dest: /root/allowlist-request.csv

- name: Show failed checks
  ansible.builtin.debug:
    msg: "{{ allowlist.checks | selectattr('status', 'equalto', 'fail') | list }}"
"""

RETURN = r"""
request:
  description: The request as data, in the order relay owners ask for it.
  returned: success
  type: dict
  contains:
    fqdn:
      description: Fully qualified name of the server.
      type: str
      sample: app1.example.org
    purpose:
      description: What the server is for.
      type: str
    ipv4:
      description: IPv4 egress addresses or networks.
      type: list
      elements: str
      sample: [203.0.113.17]
    ipv6:
      description: IPv6 egress addresses or networks.
      type: list
      elements: str
      sample: ["2001:db8:10::17"]
    team:
      description: Owning team.
      type: str
    contact:
      description: Mail address or chat channel.
      type: str
    relay:
      description: The relay the request is for (as given, or Postfix's relayhost); null when unknown.
      type: str
    monitoring:
      description: How the server is monitored; null when not given.
      type: str
    automatic_updates:
      description: V(enabled), V(disabled) or V(unknown) with O(evidence=true); null otherwise.
      type: str
    package_lists_updated:
      description: Date (UTC, C(YYYY-MM-DD)) the package lists were last updated, with O(evidence=true).
      type: str
rendered:
  description: The request rendered in O(format).
  returned: success
  type: str
mail:
  description: The mail rendering in parts, for sending it from the controller.
  returned: success
  type: dict
  contains:
    subject:
      description: Subject line.
      type: str
      sample: "Email sending: allowlist server"
    body:
      description: Plain-text body.
      type: str
checks:
  description:
    - One entry per check with a stable id such as C(fqdn.forward_mismatch), C(rdns.mismatch),
      C(address.not_global), C(address.unusable), C(address.too_broad), C(egress.detected).
  returned: success, and on failure when a check failed
  type: list
  elements: dict
  contains:
    id:
      description: Stable dotted id.
      type: str
    status:
      description: V(pass), V(warn), V(fail), V(unknown) or V(skip).
      type: str
    field:
      description: The request field the check is about.
      type: str
    message:
      description: What was found.
      type: str
    stage:
      description: V(input), V(egress), V(address), V(dns) or V(evidence).
      type: str
    hint:
      description: What to do about it, or null.
      type: str
valid:
  description:
    - Whether no check failed and none is V(unknown). Warnings do not invalidate; a lookup DNS never answered does.
  returned: success, and on failure when a check failed
  type: bool
verdict:
  description:
    - The worst status of all checks, V(fail) > V(unknown) > V(warn) > V(pass) (skipped checks count as nothing).
  returned: success, and on failure when a check failed
  type: str
  sample: pass
dest:
  description: The file written (or that would be written).
  returned: when O(dest) is given
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.model import (
    DEFAULT_FAIL_ON,
    DEFAULT_MAX_PACKAGE_LIST_AGE,
    DEFAULT_SUBJECT,
    FORMATS,
)
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.request import allowlist_request
from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL_ON_CHOICES
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.host import HostInfo


def main():
    module = AnsibleModule(
        argument_spec={
            "fqdn": {"type": "str"},
            "purpose": {"type": "str", "required": True},
            "ipv4": {"type": "list", "elements": "str", "default": []},
            "ipv6": {"type": "list", "elements": "str", "default": []},
            "egress": {"type": "list", "elements": "str", "default": []},
            "team": {"type": "str", "required": True},
            "contact": {"type": "str", "required": True},
            "monitoring": {"type": "str"},
            "relay_host": {"type": "str"},
            "relay_public": {"type": "bool"},
            "prefer_ipv6": {"type": "bool", "default": False},
            "format": {"type": "str", "choices": list(FORMATS), "default": "mail"},
            "subject": {"type": "str", "default": DEFAULT_SUBJECT},
            "dest": {"type": "path"},
            "evidence": {"type": "bool", "default": False},
            "max_package_list_age": {"type": "int", "default": DEFAULT_MAX_PACKAGE_LIST_AGE},
            "nameservers": {"type": "list", "elements": "str", "default": []},
            "dns_port": {"type": "int", "default": 53},
            "timeout": {"type": "float", "default": 5.0},
            "report_only": {"type": "bool", "default": False},
            "fail_on": {
                "type": "list",
                "elements": "str",
                "choices": list(FAIL_ON_CHOICES),
                "default": list(DEFAULT_FAIL_ON),
            },
            "config_dir": {"type": "path"},
        },
        supports_check_mode=True,
    )

    def runner(argv):
        path = module.get_bin_path(argv[0])
        if path is None:
            return 127, "", f"{argv[0]}: not found"
        return module.run_command([path, *argv[1:]], environ_update={"LC_ALL": "C"})

    host = HostInfo(runner=runner, config_dir=module.params["config_dir"])
    try:
        result = allowlist_request(module.params, host, check_mode=module.check_mode, want_diff=module._diff)
    except SmtpRelayError as e:
        module.fail_json(msg=e.msg, **e.details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
