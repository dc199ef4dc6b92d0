# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: ses_smtp_password
short_description: Derive the Amazon SES SMTP password from an AWS secret access key
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Computes the SES SMTP password (signature version 4) that belongs to an IAM secret access key in a region.
  - The password is region specific; a region without an SES SMTP endpoint is refused.
  - A key with a line break, a control character or leading/trailing white space (a key read from a file with its
    newline) is refused without being shown, as the C(smtp.relay.postfix) role refuses it, because the password
    derived from it would not be the one AWS expects.
  - The result is a secret; keep it out of logs (C(no_log)) and inventories in clear text.
options:
  _input:
    description: The AWS secret access key.
    type: str
    required: true
  region:
    description: The AWS region of the SES SMTP endpoint, for example V(eu-west-1).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Relay through Amazon SES with a password derived from the IAM secret key
  ansible.builtin.include_role:
    name: smtp.relay.postfix
  vars:
    postfix_relay_provider: ses
    postfix_relay_ses_region: eu-west-1
    postfix_relay_username: "{{ vault_ses_access_key_id }}"
    postfix_relay_password: "{{ vault_ses_secret_access_key | smtp.relay.ses_smtp_password('eu-west-1') }}"
"""

RETURN = r"""
_value:
  description: The SMTP password, 44 characters of base64 starting with C(B).
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.providers import ses_smtp_password


def ses_smtp_password_filter(secret_access_key, region):
    try:
        return ses_smtp_password(secret_access_key, region)
    except SmtpRelayError as e:
        raise AnsibleFilterError(e.msg) from e


class FilterModule:
    def filters(self):
        return {"ses_smtp_password": ses_smtp_password_filter}
