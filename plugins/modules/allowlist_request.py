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
  - With O(send=true), mails the request to the relay owners (O(mail_to)) through O(smtp_host), always over TLS
    whose certificate is verified (O(ca_file), else the system's CAs) and whose name must match O(smtp_host). A
    certificate that does not verify ends the session before anything is sent, and the password is never sent to
    it. The mail goes from where the module runs; O(request) sends a request built on another host, for example
    from the controller.
  - Each failed check is also returned as a warning, so that it shows in the play's output at any verbosity.
options:
  fqdn:
    description:
      - Fully qualified name of the server.
      - Default is the host's own FQDN, which is then checked rather than refused when it is not qualified.
    type: str
  purpose:
    description: What the server is for, in one line. Required unless O(request) is given.
    type: str
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
    description: The team that owns the server. Required unless O(request) is given.
    type: str
  contact:
    description:
      - Who to ask about the server, a mail address (V(mail-ops@example.org)) or a named chat channel (V(#mail-ops),
        V(slack:#mail-ops), V(matrix:#mail-ops:example.org)). Required unless O(request) is given.
    type: str
  shared_egress:
    description:
      - The egress addresses given in O(ipv4), O(ipv6) and O(egress) are a platform's shared egress ranges (a PaaS,
        a cloud NAT gateway), which the application's FQDN never resolves to and whose reverse names are the
        platform's.
      - The FQDN must still resolve, but the forward check of each range and the reverse check of each address are
        then skipped, each with a check saying why (C(fqdn.shared_egress), C(rdns.shared_egress)), instead of
        failing. Other checks are unchanged; the request marks the addresses as shared egress.
      - Needs the ranges given; detected addresses are never shared ones.
    type: bool
    default: false
  volume_per_day:
    description: Expected number of mails per day, 0 to 1000000000, for relay owners who ask; shown when given.
    type: int
  sender_domains:
    description:
      - Domains the server sends as (the domains of its From addresses), for relay owners who ask; shown when given.
      - Each must be a domain name with at least two labels; internationalized names are given in A-label form.
    type: list
    elements: str
    default: []
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
    description:
      - Seconds to wait for each DNS lookup through O(nameservers), and for each step of sending (O(send)), more
        than 0 and at most 300.
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
  request:
    description:
      - A request built by an earlier run (its RV(request)), to render, write or send as it is, for example from
        the controller after building it on the host. Nothing is read from the host and no check is run again;
        every field is checked as input again, by the rules that built it.
      - O(fqdn), O(purpose), O(team), O(contact), O(monitoring), O(volume_per_day) and O(sender_domains) cannot
        be given with it; options that decide how a request is gathered and checked are ignored.
    type: dict
  send:
    description:
      - Mail the request (its mail rendering, O(subject)) to O(mail_to) through O(smtp_host). Sending reports a
        change; in check mode nothing is connected to and RV(sent) says what would be sent.
      - Nothing is sent when a check refuses the request (see O(fail_on)).
    type: bool
    default: false
  smtp_host:
    description:
      - The mail server to send through, with O(send=true). Its certificate must hold this name or IP address.
    type: str
  smtp_port:
    description: Its port; default V(587) with O(smtp_tls=starttls), V(465) with O(smtp_tls=implicit).
    type: int
  smtp_tls:
    description: V(starttls) (STARTTLS is required) or V(implicit) (TLS from the start); never in clear.
    type: str
    choices: [starttls, implicit]
    default: starttls
  ca_file:
    description:
      - PEM file of the CA certificates that verify O(smtp_host)'s certificate, where the module runs. Default is the
        system's CAs.
    type: path
  smtp_username:
    description: User name for SMTP AUTH (PLAIN, LOGIN or CRAM-MD5, after TLS); with O(smtp_password).
    type: str
  smtp_password:
    description: Password for SMTP AUTH; never shown in output.
    type: str
  mail_from:
    description: Sender address of the mail, with O(send=true).
    type: str
  mail_to:
    description: Recipients of the mail (the relay owners), with O(send=true); at most 50 with O(mail_cc).
    type: list
    elements: str
    default: []
  mail_cc:
    description: Copy recipients. A recipient the server refuses and the mail goes to nobody.
    type: list
    elements: str
    default: []
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

- name: A platform app whose mail leaves through the platform's shared egress ranges
  smtp.relay.allowlist_request:
    fqdn: shop.apps.example.org
    purpose: Order confirmations
    team: Shop platform
    contact: shop-ops@example.org
    egress: [198.51.100.0/26, "2001:db8:100::/56"]
    shared_egress: true
    volume_per_day: 2000
    sender_domains: [shop.example.org]

- name: Build the request on the host, then send it from the controller through the team's mail server
  smtp.relay.allowlist_request:
    request: "{{ allowlist.request }}"
    send: true
    smtp_host: smtp.example.org
    smtp_username: allowlist-bot
    smtp_password: "{{ vault_allowlist_bot_password }}"
    mail_from: allowlist-bot@example.org
    mail_to: [relay-owners@agency.example]
  delegate_to: localhost

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
    shared_egress:
      description: True when the egress addresses are a platform's shared ranges (O(shared_egress)); null otherwise.
      type: bool
    team:
      description: Owning team.
      type: str
    contact:
      description: Mail address or chat channel.
      type: str
    volume_per_day:
      description: Expected mails per day; null when not given.
      type: int
      sample: 2000
    sender_domains:
      description: Domains the server sends as, lower-case A-labels.
      type: list
      elements: str
      sample: [shop.example.org]
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
sent:
  description: The mail sent (in check mode, the one that would be sent).
  returned: when O(send=true)
  type: dict
  contains:
    sent:
      description: Whether the server accepted the mail (false in check mode).
      type: bool
    smtp_host:
      description: The server it went through.
      type: str
    smtp_port:
      description: Its port.
      type: int
    tls:
      description: TLS version of the verified session (null in check mode).
      type: str
      sample: TLSv1.3
    from:
      description: Sender address.
      type: str
    to:
      description: Recipients.
      type: list
      elements: str
    cc:
      description: Copy recipients.
      type: list
      elements: str
    message_id:
      description: Message-ID header of the mail.
      type: str
    reply:
      description: The server's reply to the message, usually with its queue id.
      type: str
      sample: "2.0.0 Ok: queued as 4FAKE123"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.model import (
    DEFAULT_FAIL_ON,
    DEFAULT_MAX_PACKAGE_LIST_AGE,
    DEFAULT_SUBJECT,
    FORMATS,
)
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.request import allowlist_request
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.send import SMTP_TLS
from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL_ON_CHOICES
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._allowlist.host import HostInfo


def main():
    module = AnsibleModule(
        argument_spec={
            "fqdn": {"type": "str"},
            "purpose": {"type": "str"},
            "ipv4": {"type": "list", "elements": "str", "default": []},
            "ipv6": {"type": "list", "elements": "str", "default": []},
            "egress": {"type": "list", "elements": "str", "default": []},
            "team": {"type": "str"},
            "contact": {"type": "str"},
            "shared_egress": {"type": "bool", "default": False},
            "volume_per_day": {"type": "int"},
            "sender_domains": {"type": "list", "elements": "str", "default": []},
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
            "request": {"type": "dict"},
            "send": {"type": "bool", "default": False},
            "smtp_host": {"type": "str"},
            "smtp_port": {"type": "int"},
            "smtp_tls": {"type": "str", "choices": list(SMTP_TLS), "default": "starttls"},
            "ca_file": {"type": "path"},
            "smtp_username": {"type": "str"},
            "smtp_password": {"type": "str", "no_log": True},
            "mail_from": {"type": "str"},
            "mail_to": {"type": "list", "elements": "str", "default": []},
            "mail_cc": {"type": "list", "elements": "str", "default": []},
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
    for warning in result.pop("warnings"):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
