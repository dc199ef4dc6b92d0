#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: mail_test
short_description: Send a marked test mail through the host's Postfix and follow it until the relay accepts it
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - A health check through Postfix itself, what platform guides call a test script. The mail is submitted with
    Postfix's C(sendmail -i -t), so it takes the path real mail takes - sender rewriting, the stored SASL
    credentials, the TLS policy - and no credential is given to this module.
  - The mail carries a unique marker header C(X-Smtp-Relay-Test) and Message-ID. Its queue id is found in the mail
    log (the line where Postfix's cleanup logs the Message-ID) or, without a log, among the new queue entries by the
    marker (C(postcat -h)).
  - It is followed with C(postqueue -j) and the mail log until it has left the queue or O(timeout) has passed.
    Accepted by the relay is RV(status=sent) with the relay's reply; refused for good is V(bounced) with the reply;
    still queued is V(deferred) with Postfix's reason. A mail Postfix deferred is reported at once (its next attempt
    is minutes away).
  - The mail log is Postfix's C(maillog_file) when set, else C(/var/log/mail.log) or C(/var/log/maillog), else the
    systemd journal. A host with none cannot tell sent from bounced once the mail left the queue; that is reported
    as V(unknown) with a V(warn) check, never as sent.
  - With O(sender_check), the sender Postfix used (after its rewriting) is checked with the checks of
    M(smtp.relay.sender_check) (names, DNS, SPF for the relay named by the host's C(relayhost), DMARC).
  - The task fails when a check has one of the statuses in O(fail_on); by default when the mail was deferred or
    bounced, Postfix is not running, or C(sendmail) refused it.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.sends_mail
  - smtp.relay.attributes.action_group
  - smtp.relay.options.read_config_dir
  - smtp.relay.options.dns_port
attributes:
  check_mode:
    details: No mail is sent, RV(status) is V(skipped) and C(changed) is false.
options:
  rcpt_to:
    description:
      - The one address the test mail is sent to, C(local@domain). It should be a mailbox that accepts mail and needs
        no answer.
    type: str
    required: true
  mail_from:
    description:
      - Envelope sender and From address (C(sendmail -f)). Postfix's sender rewriting still applies.
      - Default is what Postfix uses for mail from the user the module runs as (C(root@$myorigin), then rewritten by
        C(sender_canonical_maps)), as real mail from that host gets.
    type: str
  subject:
    description:
      - Subject of the test mail, one line of printable text, at most 200 characters.
      - Default C(smtp.relay mail test from) and Postfix's C(myhostname).
    type: str
  timeout:
    description: Seconds to follow the mail, more than 0 and at most 3600.
    type: float
    default: 60.0
  sender_check:
    description:
      - Also run the sender-domain checks of M(smtp.relay.sender_check) on the domain of the sender Postfix used.
    type: bool
    default: false
  nameservers:
    description:
      - IP addresses of the DNS servers the sender checks ask. Default is the system's resolver configuration.
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - Check statuses that make the task fail; the failed result still holds RV(status) and RV(checks).
      - V([]) never fails on a check, so that RV(status) can be acted on.
    type: list
    elements: str
    choices: [fail, warn, unknown]
    default: [fail]
notes:
  - Needs the rights to run C(sendmail), C(postqueue), C(postcat) and to read the mail log or the journal - in
    practice root (C(become)).
  - The test mail is real mail - run it towards a mailbox made for it. On a schedule, one mail per run per host.
seealso:
  - module: smtp.relay.relay_check
    description: Probes the relay from the host without Postfix (DNS, TCP, TLS, certificate, AUTH).
  - module: smtp.relay.sender_check
    description: The sender-domain checks this module runs with O(sender_check).
"""

EXAMPLES = r"""
- name: Send a test mail through Postfix and wait until the relay has it
  smtp.relay.mail_test:
    rcpt_to: relay-tests@example.org
  become: true
  register: mail

- name: Report only, then decide
  smtp.relay.mail_test:
    rcpt_to: relay-tests@example.org
    timeout: 120
    sender_check: true
    fail_on: []
  become: true
  register: mail

- name: Fail when the relay did not accept the test mail
  ansible.builtin.assert:
    that: mail.status == 'sent'
    fail_msg: "{{ mail.status }}: {{ mail.reason }}"
"""

RETURN = r"""
status:
  description:
    - V(sent) (the relay accepted it), V(deferred) (still queued; RV(reason) says why), V(bounced) (the relay refused
      it for good), V(unknown) (it left the queue and nothing tells how, or it could not be sent or found) or
      V(skipped) (check mode).
  returned: always, also on failure after the options were accepted
  type: str
  sample: sent
queue_id:
  description: Postfix's queue id of the test mail, or null when it was not found.
  returned: always, also on failure after the options were accepted
  type: str
  sample: 5177424696E
marker:
  description: The value of the test mail's C(X-Smtp-Relay-Test) header, or null when nothing was sent.
  returned: always, also on failure after the options were accepted
  type: str
message_id:
  description: The test mail's Message-ID (without angle brackets), or null when nothing was sent.
  returned: always, also on failure after the options were accepted
  type: str
sender:
  description: The envelope sender Postfix used (after rewriting), O(mail_from) when that is unknown, else null.
  returned: always, also on failure after the options were accepted
  type: str
  sample: noreply@example.org
rcpt_to:
  description: The recipient, normalized.
  returned: always, also on failure after the options were accepted
  type: str
relay:
  description: The relay the last delivery attempt went to, as Postfix logs it (C(host[address]:port)), or null.
  returned: always, also on failure after the options were accepted
  type: str
  sample: smtp.example.org[192.0.2.25]:587
reason:
  description: The relay's reply (sent, bounced) or Postfix's reason for the deferral, or null.
  returned: always, also on failure after the options were accepted
  type: str
  sample: 250 2.0.0 Ok queued as 7D82898FC689
dsn:
  description: The delivery status code Postfix logged (C(2.0.0), C(4.4.1) ...), or null.
  returned: always, also on failure after the options were accepted
  type: str
elapsed:
  description: Seconds from submission to the answer, or null when nothing was sent.
  returned: always, also on failure after the options were accepted
  type: float
msg:
  description: The status and counts of check statuses, for people.
  returned: always
  type: str
checks:
  description:
    - One entry per check - C(mail.service), C(mail.log), C(mail.submit), C(mail.delivery), and with O(sender_check)
      those of M(smtp.relay.sender_check) (C(domain.exists), C(spf.relay_not_authorized) ...; C(sender.checks) when
      they could not run).
  returned: always, also on failure after the options were accepted
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
      description: V(mail) for the test mail; the sender checks' own stages (V(name), V(dns), V(spf) ...).
      type: str
    message:
      description: What was found.
      type: str
    hint:
      description: What to do about it, or null.
      type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.smtp.relay.plugins.module_utils._checks import FAIL_ON_CHOICES
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.mail_test import DEFAULT_TIMEOUT, mail_test
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import DEFAULT_CONFIG_DIR, PostconfRunner


def main():
    module = AnsibleModule(
        argument_spec={
            "rcpt_to": {"type": "str", "required": True},
            "mail_from": {"type": "str"},
            "subject": {"type": "str"},
            "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
            "sender_check": {"type": "bool", "default": False},
            "nameservers": {"type": "list", "elements": "str", "default": []},
            "dns_port": {"type": "int", "default": 53},
            "fail_on": {"type": "list", "elements": "str", "choices": list(FAIL_ON_CHOICES), "default": ["fail"]},
            "config_dir": {"type": "path", "default": DEFAULT_CONFIG_DIR},
        },
        supports_check_mode=True,
    )
    try:
        result = mail_test(PostconfRunner.for_module(module), module.params, check_mode=module.check_mode)
    except SmtpRelayError as e:
        details = dict(e.details)
        module.fail_json(msg=e.msg, changed=details.pop("changed", False), **details)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
