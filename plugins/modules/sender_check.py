#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: sender_check
short_description: Check sender addresses and domains before a relay loses their mail
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - For each sender domain, reports what will go wrong when mail from it leaves through the relay, before the
    first message is lost. Read-only; it only asks DNS.
  - Names (no DNS) - address and domain syntax with IDNA normalisation; special-use and documentation names
    (C(.test), C(.example), C(.invalid), C(.localhost), C(.local), C(.onion), C(.arpa), C(.alt), C(.internal),
    C(example.com/net/org)) are refused and get no DNS question; real domains often typed as fake addresses
    (C(domain.com), C(test.com) ...) are warned about; the approved list O(allowed_domains) and what the relay does
    with a sender outside it.
  - Existence - NXDOMAIN fails; no MX warns; a null MX fails. A question nobody answered (timeout, SERVFAIL,
    REFUSED, the O(deadline) reached) is reported as V(unknown), never as pass or fail.
  - SPF (RFC 7208) - exactly one valid record; C(v=spf1 -all); the DNS-lookup count (limit 10) and void lookups
    (limit 2) from a walk of every include and redirect; the result for each egress IP of the relay, evaluated by
    pyspf (the reference implementation whose RFC 7208 test suite this collection runs); or, for a O(provider),
    whether its SPF include is present.
  - DKIM - for each of O(dkim_selectors), the key record (CNAME chains followed), version, key type, revoked keys
    (empty C(p=)), RSA key size (fail under 1024 bits, warn under 2048) and the testing flag.
  - DMARC - the record at C(_dmarc.DOMAIN) or at the organizational domain, its policy, alignment modes and report
    addresses, and a prediction whether a message with this From domain, the envelope domain after the relay's
    rewriting, and the DKIM signing domain aligns and passes.
  - The organizational domain is found with a built-in rule (the last two labels, three under common suffixes such
    as C(co.uk)), not the Public Suffix List, so it can be wrong for other multi-label public suffixes.
  - Every DNS name is asked once per run; domains are checked concurrently on at most O(workers) threads.
  - The task fails when a check has one of the statuses in O(fail_on) (by default a failed check), with the
    whole result. V(unknown) is never success - RV(valid) is false when a check failed or is unknown.
  - Unexpected data that stops the checks of one domain becomes a failed C(domain.check_error) check of that
    domain; the other domains are still checked.
requirements:
  - dnspython (Debian C(python3-dnspython)) for DNS checks.
  - pyspf (Debian C(python3-spf)) to evaluate SPF for the relay's IPs; without it that check is skipped.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.read_only
  - smtp.relay.options.dns_port
options:
  addresses:
    description:
      - Sender addresses (C(local@domain)). Their domains are checked, and the addresses listed under them.
    type: list
    elements: str
    default: []
  domains:
    description:
      - Sender domains to check, in addition to those of O(addresses). Internationalized names are accepted.
    type: list
    elements: str
    default: []
  allowed_domains:
    description:
      - The relay's approved sender domains. V(example.org) admits exactly that domain, V(*.example.org) its
        subdomains but not V(example.org) itself.
      - Empty means no approved list is enforced (the check is skipped).
    type: list
    elements: str
    default: []
  rewrite_domain:
    description:
      - Domain the relay rewrites senders outside O(allowed_domains) to. Without it such senders are reported as
        rejected. The rewritten domain is then the envelope domain for SPF and DMARC.
    type: str
  envelope_domain:
    description:
      - Domain the relay puts in the envelope sender (MAIL FROM) of all mail, when it rewrites it, for example a
        provider's bounce domain. Default is the sender's own domain.
    type: str
  relay_ips:
    description:
      - Egress IPv4/IPv6 addresses the relay sends from; SPF is evaluated for each.
    type: list
    elements: str
    default: []
  relay_host:
    description:
      - The relay, as a host name or in Postfix relayhost syntax (V([smtp.example.org]:587)). When O(relay_ips) is
        empty, its A and AAAA records are taken as the egress IPs.
    type: str
  provider:
    description:
      - The relay's provider. When set, checks that the envelope domain's SPF includes the provider's SPF domain
        (V(ses) C(amazonses.com), V(sendgrid) C(sendgrid.net), V(mailgun) C(mailgun.org), V(office365) and
        V(office365_connector) C(spf.protection.outlook.com), V(google_relay) and V(gmail) C(_spf.google.com)).
        V(custom) checks nothing.
    type: str
    choices: [ses, sendgrid, mailgun, office365, office365_connector, google_relay, gmail, custom]
  dkim_selectors:
    description:
      - DKIM selectors to check at C(SELECTOR._domainkey.DOMAIN).
      - When given, the message is assumed signed with C(d=) O(dkim_domain) for the DMARC prediction.
    type: list
    elements: str
    default: []
  dkim_domain:
    description:
      - DKIM signing domain (C(d=)). Default is each sender domain.
    type: str
  nameservers:
    description:
      - IP addresses of the DNS servers to ask. Default is the system's resolver configuration.
    type: list
    elements: str
    default: []
  dns_port:
    # Documented with smtp.relay.options.dns_port; the alias is this module's own.
    aliases: [port]
  timeout:
    description: Seconds to wait for one DNS answer, more than 0 and at most 300.
    type: float
    default: 5.0
  deadline:
    description:
      - Seconds for the whole run, more than 0 and at most 86400. Questions not yet asked when it is reached are
        reported as V(unknown).
    type: float
    default: 120.0
  workers:
    description: Number of domains checked at the same time, 1 to 256.
    type: int
    default: 16
  fail_on:
    description:
      - Check statuses that make the task fail. The failed result still holds RV(domains), RV(relay),
        RV(valid) and RV(verdict).
      - V([fail]) fails when a check failed. Add V(unknown) to fail when DNS did not answer, and V(warn) to fail on
        warnings too. V([]) never fails on a check (only on bad options), so that RV(valid) or RV(verdict) can be
        acted on.
    type: list
    elements: str
    choices: [fail, warn, unknown]
    default: [fail]
notes:
  - Runs wherever the task runs; delegate it to C(localhost) to check from the controller.
  - Special-use and documentation names are refused even when a local DNS server answers for them.
seealso:
  - name: RFC 7208 (SPF)
    description: Sender Policy Framework.
    link: https://www.rfc-editor.org/rfc/rfc7208
  - name: RFC 7489 (DMARC)
    description: Domain-based Message Authentication, Reporting, and Conformance.
    link: https://www.rfc-editor.org/rfc/rfc7489
"""

EXAMPLES = r"""
- name: Check the senders of the fleet against the campus relay
  smtp.relay.sender_check:
    addresses:
      - noreply@apps.example.org
      - alerts@monitoring.example.org
    allowed_domains: ["example.org", "*.example.org"]
    relay_host: "[smtp.campus.example.org]:587"
    dkim_selectors: [s2024]
  delegate_to: localhost
  run_once: true
  register: senders

- name: Report only, then decide; unknown (DNS did not answer) is not valid either
  smtp.relay.sender_check:
    domains: [example.org, example.net]
    fail_on: []
  register: senders

- name: Fail when a sender domain would lose mail or could not be checked
  ansible.builtin.assert:
    that: senders.valid
    fail_msg: "{{ senders.verdict }}: {{ senders.msg }}"

- name: Fail the task itself on failed and unanswered checks alike
  smtp.relay.sender_check:
    domains: [example.org]
    fail_on: [fail, unknown]

- name: Check domains sent through Amazon SES, asking a given DNS server
  smtp.relay.sender_check:
    domains: [example.org]
    provider: ses
    nameservers: [192.0.2.53]
    timeout: 2
"""

RETURN = r"""
valid:
  description:
    - Whether no check failed and none is V(unknown) for any domain. Warnings do not invalidate; a question DNS
      never answered does.
  returned: success, and on failure when a check had a status in O(fail_on)
  type: bool
verdict:
  description:
    - The worst status of all checks, V(fail) > V(unknown) > V(warn) > V(pass) (skipped checks count as nothing).
  returned: success, and on failure when a check had a status in O(fail_on)
  type: str
  sample: pass
msg:
  description: Counts of check statuses and the failed and unknown checks, for people.
  returned: always
  type: str
domains:
  description: One entry per sender domain (the normalized name; the raw text for names that are not valid).
  returned: success, and on failure when a check had a status in O(fail_on)
  type: dict
  contains:
    addresses:
      description: The addresses from O(addresses) in this domain.
      type: list
      elements: str
    valid:
      description: Whether no check failed and none is V(unknown) for this domain.
      type: bool
    verdict:
      description: The worst status of this domain's checks, V(fail) > V(unknown) > V(warn) > V(pass).
      type: str
    checks:
      description:
        - One entry per check. Ids are stable whatever the status, for example C(domain.special_use),
          C(domain.not_allowed), C(domain.exists), C(mx.null), C(spf.record), C(spf.lookups),
          C(spf.void_lookups), C(spf.relay_not_authorized), C(dkim.key), C(dmarc.alignment).
      type: list
      elements: dict
      contains:
        id:
          description: Stable dotted id.
          type: str
        status:
          description: V(pass), V(warn), V(fail), V(unknown) or V(skip).
          type: str
        stage:
          description:
            - V(name), V(policy), V(dns), V(spf), V(dkim), V(dmarc), or V(internal) for C(domain.check_error)
              (unexpected data stopped this domain's checks).
          type: str
        message:
          description: What was found.
          type: str
        hint:
          description: What to do about it, or null.
          type: str
relay:
  description: The relay as understood, and the egress IPs SPF was evaluated for.
  returned: success, and on failure when a check had a status in O(fail_on)
  type: dict
  contains:
    host:
      description: The host part of O(relay_host), or null.
      type: str
    ips:
      description: The egress IPs.
      type: list
      elements: str
    source:
      description: Where the IPs came from, V(relay_ips), V(relay_host) or V(none).
      type: str
    checks:
      description: Checks about resolving O(relay_host), id C(relay.addresses).
      type: list
      elements: dict
      contains:
        id:
          description: Stable dotted id.
          type: str
        status:
          description: V(pass), V(warn), V(fail), V(unknown) or V(skip).
          type: str
        stage:
          description: V(dns).
          type: str
        message:
          description: What was found.
          type: str
        hint:
          description: What to do about it, or null.
          type: str
dns_queries:
  description: Number of DNS questions asked (each name and type once per run).
  returned: success, and on failure when a check had a status in O(fail_on)
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL_ON_CHOICES
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._sender.engine import (
    DEFAULT_FAIL_ON,
    DEFAULT_WORKERS,
    PROVIDERS,
    check_senders,
)


def main():
    list_of_str = {"type": "list", "elements": "str", "default": []}
    module = AnsibleModule(
        argument_spec={
            "addresses": dict(list_of_str),
            "domains": dict(list_of_str),
            "allowed_domains": dict(list_of_str),
            "rewrite_domain": {"type": "str"},
            "envelope_domain": {"type": "str"},
            "relay_ips": dict(list_of_str),
            "relay_host": {"type": "str"},
            "provider": {"type": "str", "choices": list(PROVIDERS)},
            "dkim_selectors": dict(list_of_str),
            "dkim_domain": {"type": "str"},
            "nameservers": dict(list_of_str),
            "dns_port": {"type": "int", "default": 53, "aliases": ["port"]},
            "timeout": {"type": "float", "default": 5.0},
            "deadline": {"type": "float", "default": 120.0},
            "workers": {"type": "int", "default": DEFAULT_WORKERS},
            "fail_on": {
                "type": "list",
                "elements": "str",
                "choices": list(FAIL_ON_CHOICES),
                "default": list(DEFAULT_FAIL_ON),
            },
        },
        required_one_of=[("addresses", "domains")],
        supports_check_mode=True,
    )
    try:
        result = check_senders(module.params)
    except SmtpRelayError as e:
        module.fail_json(msg=e.msg, changed=False, **e.details)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
