#!/usr/bin/python
# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: relay_check
short_description: Validate a host's relay settings and probe the relay from that host
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Static rules, no network - relayhost grammar; port against TLS mode (C(smtp_tls_wrappermode)); SASL without
    encryption; a verifying TLS level without a CA; SASL map keys against the relayhost (they must be written
    exactly like it); obsolete, mistyped and unknown parameters; booleans Postfix daemons would die on; the
    relay's AUTH mechanisms against C(smtp_sasl_security_options) ("No worthy mechs found"); missing Cyrus SASL
    plugins.
  - Live probe from the managed host, stage by stage, each with its own timeout and timing - DNS (MX when the
    relayhost is not in brackets, then A/AAAA), TCP (a timeout, i.e. dropped packets or blocked egress, is told
    apart from a refusal, with the provider's other ports as a hint), banner, EHLO, STARTTLS or implicit TLS,
    certificate (chain against the CA, name as Postfix matches it, with and without SNI, days to expiry), AUTH
    mechanisms after TLS, optional AUTH, optional MAIL FROM / RCPT TO then RSET, optional test message.
  - Settings are read from the host's Postfix (C(postconf)) unless O(settings) is given; with O(settings) and
    O(probe=false) Postfix is not needed on the host at all (the role's pre-flight runs it that way).
  - Fails when any check fails, with a one-line summary naming the failed checks; the result still holds every
    check. Nothing secret is ever returned.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - smtp.relay.attributes.read_only
  - smtp.relay.attributes.action_group
  - smtp.relay.options.read_config_dir
attributes:
  check_mode:
    details: Read-only; in check mode the test message of O(send_test) is not sent.
options:
  relayhost:
    description:
      - The relay in Postfix syntax (V([smtp.example.com]:587), V([ipv6:2001:db8::1]:465), several separated by
        commas). Default is the host's C(relayhost). When given, it replaces the host's value.
      - Only the first destination is probed.
    type: str
  tls:
    description:
      - How to talk to the relay. Default is what the host's settings say (C(smtp_tls_wrappermode),
        C(smtp_tls_security_level)), or, without Postfix, what the port implies (465 and 2465 implicit, 25, 587,
        2525, 2587 STARTTLS).
      - When it differs from the host's settings, check C(tls.mode_mismatch) fails.
    type: str
    choices: [starttls, implicit, none]
  probe:
    description: Whether to contact the relay. V(false) runs the static rules only.
    type: bool
    default: true
  ca_file:
    description:
      - CA certificates (PEM) to verify the relay's certificate with. Default is the host's C(smtp_tls_CAfile).
    type: path
  username:
    description: User name for the AUTH test. Needs O(password).
    type: str
  password:
    description: Password for the AUTH test. Never returned.
    type: str
  auth:
    description:
      - Whether to try AUTH. Default is V(true) when O(username) is given, and when O(mail_from) is tested on a host
        whose Postfix authenticates (C(smtp_sasl_auth_enable = yes)), as Postfix does before MAIL FROM.
      - With V(true) and no O(username), the credentials stored in the host's SASL map for the relayhost are used
        (read as root, sent only to the relay, hidden from every output like a C(no_log) value).
    type: bool
  allow_plaintext_auth:
    description:
      - SASL over a connection without TLS is a warning instead of a failure (check C(sasl.without_encryption)), as
        with the C(smtp.relay.postfix) role's C(postfix_relay_allow_plaintext_auth).
    type: bool
    default: false
  timeout:
    description:
      - Seconds each stage (lookup, connect, each SMTP command with its whole reply, handshake) may take; at most 300.
      - The whole probe ends within 6 times this, whatever the relay does (a relay that drips its replies byte by
        byte fails the stage it stalls, as C(STAGE.timeout)).
    type: float
    default: 10.0
  mail_from:
    description: Envelope sender to try with MAIL FROM (then RSET, unless O(send_test)).
    type: str
  rcpt_to:
    description: Envelope recipients to try with RCPT TO. Needs O(mail_from).
    type: list
    elements: str
  send_test:
    description:
      - Send a test message to O(rcpt_to) and return the relay's queue id. Not done in check mode.
    type: bool
    default: false
  subject:
    description: Subject of the test message.
    type: str
  body:
    description: Body of the test message.
    type: str
  servername:
    description:
      - SNI to send in the TLS handshake, as C(smtp_tls_servername) (V(hostname), V(nexthop) or a name). Default is
        the host's C(smtp_tls_servername); when that is empty no SNI is sent, as Postfix does.
    type: str
  ehlo_name:
    description: Name to send with EHLO. Default is the host's C(smtp_helo_name) (C(myhostname)), else its FQDN.
    type: str
  settings:
    description:
      - main.cf parameters to check INSTEAD of reading the host (name to value; V(null) means the default). Missing
        parameters take Postfix's defaults.
      - Values of parameters whose name marks them as secret (such as C(relay_api_key)) never appear in the output.
    type: dict
  sasl_keys:
    description:
      - Keys of the SASL password map to check against the relayhost (never the passwords). Default is the keys of
        the host's C(smtp_sasl_password_maps) source files. An empty key is refused.
    type: list
    elements: str
  nameservers:
    description:
      - DNS servers to ask for the relay's MX and address (A/AAAA) records (IP addresses).
      - Default is to look the relay up as the host's Postfix will (C(smtp_host_lookup)) - V(dns), Postfix's default,
        asks DNS alone (C(/etc/hosts) is not read; needs C(python3-dnspython) on the host, else the system resolver
        answers); V(native) the host's own resolver (C(/etc/hosts), then DNS). Without Postfix, the host's resolver.
    type: list
    elements: str
  expect:
    description:
      - Expected values of the host's relay facts, exactly as the O(smtp.relay.relay_info#module:expect) option of
        M(smtp.relay.relay_info) takes them. The facts are read and compared in the same call, returned as
        RV(relay) and RV(mismatches), and check C(host.expectations) fails on a mismatch.
    type: dict
  fail_on:
    description:
      - Check statuses that make the task fail. The failed result still holds RV(checks) and RV(valid).
      - V([fail]) fails when a check failed. Add V(unknown) to fail when a question got no answer (DNS silent, a
        certificate not fetched), as C(smtp.relay.verify) does, and V(warn) to fail on warnings too. V([]) never
        fails on a check (only on bad options), so that RV(valid) can be acted on.
    type: list
    elements: str
    choices: [fail, warn, unknown]
    default: [fail]
notes:
  - Certificate names are matched as Postfix does at C(smtp_tls_security_level=verify) (C(smtp_tls_verify_cert_match))
    and C(secure) (C(smtp_tls_secure_cert_match)); below C(verify) certificate problems are warnings, since Postfix
    does not check them.
  - Addresses are looked up as the host's Postfix will (C(smtp_host_lookup)), or through O(nameservers) when given. A
    relay only the system resolver knows (C(/etc/hosts)) while Postfix asks DNS alone fails as C(dns.host_lookup).
  - The relay's entry in C(smtp_tls_policy_maps), when there is one, decides as Postfix does - level, expected names
    (C(match=)), pinned fingerprints, SNI (C(servername=)), protocols.
seealso:
  - module: smtp.relay.relay_info
  - name: Postfix TLS support
    description: The Postfix TLS client settings.
    link: https://www.postfix.org/TLS_README.html
"""

EXAMPLES = r"""
- name: Check the host's Postfix settings and reach its relay
  smtp.relay.relay_check:
  become: true

- name: Prove the relay takes mail from this host, sending one message
  smtp.relay.relay_check:
    mail_from: noreply@apps.example.org
    rcpt_to: [ops@example.org]
    send_test: true
    subject: "relay test from {{ inventory_hostname }}"
    body: "If you read this, {{ inventory_hostname }} can send mail."
  become: true
  register: relay
- ansible.builtin.debug:
    msg: "queued at the relay as {{ relay.queue_id }}"

- name: Pre-flight, static rules only, on settings about to be applied (Postfix not needed)
  smtp.relay.relay_check:
    probe: false
    settings:
      relayhost: "[smtp.example.org]:465"
      smtp_tls_wrappermode: "yes"
      smtp_tls_security_level: encrypt
      smtp_sasl_auth_enable: "yes"
      smtp_sasl_password_maps: hash:/etc/postfix/sasl_passwd
    sasl_keys: ["[smtp.example.org]:465"]

- name: Probe a relay from a host without Postfix
  smtp.relay.relay_check:
    relayhost: "[smtp.sendgrid.net]:587"
    username: apikey
    password: "{{ sendgrid_api_key }}"
    timeout: 5
"""

RETURN = r"""
relay:
  description: The host's relay facts, as M(smtp.relay.relay_info) returns them.
  returned: when O(expect) is given
  type: dict
mismatches:
  description: One line per expectation the host does not meet.
  returned: when O(expect) is given
  type: list
  elements: str
valid:
  description:
    - Whether no check failed and none is V(unknown) (a question nobody answered is not a success); warnings do
      not invalidate.
  returned: always
  type: bool
msg:
  description: Counts of check statuses, then each failed check as C(id - message), for people.
  returned: always
  type: str
checks:
  description:
    - Static checks first (stage V(static)), then one check per probe stage. Each id is stable. A static rule
      keeps its id whatever its status and is left out when it does not apply. A probe stage passes under its
      base id and fails under an id that names the problem; stages not reached or not asked for are reported as
      V(skip) under their base id.
    - Static ids - C(relayhost.missing), C(relayhost.syntax), C(relayhost.mx_lookup), C(tls.level_unknown),
      C(tls.mode_mismatch), C(tls.wrappermode_required), C(tls.wrappermode_unexpected), C(tls.wrappermode_level),
      C(tls.not_encrypted), C(tls.opportunistic), C(tls.verify_without_ca), C(tls.ca_missing), C(tls.policy),
      C(tls.policy_invalid), C(sasl.not_enabled),
      C(sasl.security_options_invalid), C(sasl.without_encryption), C(sasl.no_password_maps),
      C(sasl.key_mismatch), C(sasl.no_worthy_mechs), C(sasl.plugins_missing), C(params.obsolete),
      C(params.mistyped), C(params.unknown), C(params.bad_boolean); C(host.expectations) with O(expect).
    - Probe base ids, then their failure ids - C(dns.mx) (C(dns.no_mx)), C(dns.address) (C(dns.no_address),
      C(dns.host_lookup)), C(tcp.connect) (C(tcp.timeout), C(tcp.refused), C(tcp.unreachable), C(tcp.error)),
      C(smtp.banner) (C(smtp.no_banner), C(smtp.banner_rejected)), C(smtp.ehlo) (C(smtp.ehlo_rejected)),
      C(tls.handshake) (C(tls.starttls_not_offered), C(tls.starttls_refused), C(tls.handshake_failed),
      C(tls.ca_unreadable)), C(cert.chain) (C(cert.untrusted), C(cert.missing)), C(cert.name)
      (C(cert.name_mismatch), C(cert.policy_name_mismatch) for a name the TLS policy expects,
      C(cert.fingerprint_mismatch)), C(cert.expiry) (C(cert.expired), C(cert.expires_soon)), C(cert.sni)
      (C(cert.sni_differs)), C(auth.mechanisms) (C(auth.not_offered)), C(auth.login) (C(auth.rejected),
      C(auth.error)), C(envelope.mail_from) (C(envelope.sender_rejected)), C(envelope.rcpt_to)
      (C(envelope.recipient_rejected)), C(message.sent)
      (C(message.rejected)), and C(probe.error) when the session breaks off.
    - A stage that runs out of time fails as C(smtp.timeout), C(tls.timeout), C(auth.timeout),
      C(envelope.timeout) or C(message.timeout); a reply over 64 KiB (or a line over 8 KiB) as
      C(STAGE.reply_too_large); a greeting that is not SMTP as C(smtp.not_smtp); an EHLO name that is not ASCII as
      C(smtp.ehlo_name_invalid); a non-ASCII address to a relay without SMTPUTF8 as C(envelope.smtputf8_required).
  returned: always
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
      description: V(static), V(dns), V(tcp), V(smtp), V(tls), V(cert), V(auth), V(envelope), V(message).
      type: str
    message:
      description: What was found.
      type: str
    hint:
      description: What to do about it, or null.
      type: str
    parameter:
      description: The main.cf parameter a static check is about.
      type: str
      returned: for most static checks
    elapsed_ms:
      description: How long the stage took.
      type: float
      returned: for timed probe stages
relayhost:
  description: The relayhost checked (the option, or the host's C(relayhost)).
  returned: always
  type: str
relayhosts:
  description: O(relayhost) parsed, as the C(smtp.relay.parse_relayhost) filter returns it.
  returned: always
  type: list
  elements: dict
settings_source:
  description: Where the settings came from - V(given) (O(settings)), V(host) (C(postconf)) or V(options) (no Postfix).
  returned: always
  type: str
tls_mode:
  description: The TLS mode probed, V(starttls), V(implicit) or V(none).
  returned: always
  type: str
server:
  description: The host name probed (the MX host when the relayhost asks for an MX lookup), or null.
  returned: always
  type: str
address:
  description: The IP address the probe connected to, or null.
  returned: always
  type: str
tls:
  description: TLS details of the probe (empty when not probed).
  returned: always
  type: dict
  contains:
    version:
      description: TLS protocol version.
      type: str
    cipher:
      description: Cipher suite.
      type: str
    sni:
      description: SNI sent, or null (Postfix's default).
      type: str
    chain_verified:
      description: Whether the certificate verified against the CA; null when no CA was given.
      type: bool
    chain_error:
      description: Why the certificate did not verify.
      type: str
      returned: when verification failed
    certificate:
      description:
        - The relay's certificate, as Postfix sees it - C(subject), C(issuer), C(dns_names), C(ip_addresses),
          C(not_before), C(not_after), C(days_left), C(expired), C(serial), C(sha256).
      type: dict
auth:
  description:
    - AUTH details of the probe (empty when not probed) - C(offered) mechanisms, C(permitted) (those Postfix's SASL
      security options allow), C(tls) (whether offered over TLS), C(authenticated), C(mechanism) used.
  returned: always
  type: dict
queue_id:
  description: The relay's queue id for the test message, or null.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.validation import check_type_dict

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._postfix.runner import ReadOnlyRunner
from ansible_collections.smtp.relay.plugins.module_utils._postfix.secrets import forms, hiding, setting_secrets
from ansible_collections.smtp.relay.plugins.module_utils._probe.relay_check import DEFAULT_TIMEOUT, relay_check


def _secrets(raw: dict) -> set[str]:
    return setting_secrets(raw.get("settings"), check_type_dict)


def main():
    # The values of secret-named parameters in settings are hidden from every output, as postconf hides them
    # (module_utils/_postfix/secrets.py says how); password is a no_log option.
    module = hiding(AnsibleModule, _secrets)(
        argument_spec={
            "relayhost": {"type": "str"},
            "tls": {"type": "str", "choices": ["starttls", "implicit", "none"]},
            "probe": {"type": "bool", "default": True},
            "ca_file": {"type": "path"},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "auth": {"type": "bool"},
            "allow_plaintext_auth": {"type": "bool", "default": False},
            "timeout": {"type": "float", "default": DEFAULT_TIMEOUT},
            "mail_from": {"type": "str"},
            "rcpt_to": {"type": "list", "elements": "str"},
            "send_test": {"type": "bool", "default": False},
            "subject": {"type": "str"},
            "body": {"type": "str"},
            "servername": {"type": "str"},
            "ehlo_name": {"type": "str"},
            "settings": {"type": "dict"},
            "sasl_keys": {"type": "list", "elements": "str", "no_log": False},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "nameservers": {"type": "list", "elements": "str"},
            "expect": {"type": "dict"},
            "fail_on": {"type": "list", "elements": "str", "choices": ["fail", "warn", "unknown"], "default": ["fail"]},
        },
        required_together=[("username", "password")],
        supports_check_mode=True,
    )
    try:
        # Stored SASL credentials the probe reads on the host are hidden like the password option.
        result = relay_check(
            module.params,
            ReadOnlyRunner.for_module(module),
            check_mode=module.check_mode,
            hide=lambda values: module.no_log_values.update(forms(values)),
        )
    except SmtpRelayError as e:
        module.fail_json(msg=e.msg, changed=False, **e.details)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
