# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: _relay_settings
short_description: Private - the planner of the smtp.relay.postfix role (not a public interface)
version_added: 1.0.0
author: smtp.relay contributors (@smtp-relay)
description:
  - Private to this collection - the leading underscore says so - and not covered by its compatibility promise;
    it may change in any release. Use the C(smtp.relay.postfix) role (or its C(plan) entry point) instead.
  - The one plan of the C(smtp.relay.postfix) role. Takes every C(postfix_*) role variable, coerces it to the
    type of the role's argument specification exactly as Ansible does (C(boolean()) for booleans, integers for
    ports), and returns the complete desired state of the host - every main.cf parameter, the lookup tables, the
    packages - after the static relay rules ran over it. The role applies the result as it is.
  - Bad input is refused before the host is touched, with a message that starts with the role variable's name,
    down to the element (C(postfix_relay_backup_hosts[0].host)). A host fact that main.cf would hold as it is
    (C(ca_bundle), C(config_dir), C(map_type)) is refused, naming it, when it is not one line of text.
  - Secret variables (those marked C(no_log) in the argument specification) are checked for shape only and never
    appear in the result.
  - A preset the operator must hear about (V(office365), whose Basic SMTP AUTH Microsoft disables at the end of
    December 2026) is shown as a warning in the play's output.
options:
  _input:
    description: The role variables, by name (variables not in the role's argument specification are ignored).
    type: dict
    required: true
  host:
    description:
      - What is known of the host, C(fqdn) and C(hostname) (from facts), C(ca_bundle) (the platform's CA bundle),
        C(config_dir), C(map_type) (lookup table type) and C(packages).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Show what the role would write to main.cf
  ansible.builtin.debug:
    msg: "{{ (role_vars | smtp.relay._relay_settings(host={'fqdn': 'web1.example.org'})).main_cf }}"
  vars:
    role_vars:
      postfix_relay_host: smtp.campus.example.edu
      postfix_relay_port: "587"
      postfix_relay_mx_lookup: "false"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    main_cf:
      description: Every main.cf parameter the role manages; a null value means the parameter is removed.
      type: dict
    relayhost:
      description: The relayhost value (primary relay, then the backups).
      type: str
    tls:
      description: The TLS mode, C(starttls), C(implicit) or C(none).
      type: str
    tls_level:
      description: The resulting C(smtp_tls_security_level).
      type: str
    username:
      description: SASL user name, empty without authentication.
      type: str
    allow_plaintext_auth:
      description: Whether SASL without TLS was explicitly allowed.
      type: bool
    sasl_keys:
      description: The SASL map keys, one per relayhost destination, written exactly as in relayhost.
      type: list
      elements: str
    myhostname:
      description: The host name Postfix uses.
      type: str
    myorigin:
      description: The domain Postfix appends to local senders.
      type: str
    sender_canonical:
      description: Entries of the sender rewriting map.
      type: dict
    sender_domains:
      description: Domains the rewritten senders end up in.
      type: list
      elements: str
    maps:
      description: The lookup tables to write, by name, each with C(path), C(type) and C(reference).
      type: dict
    packages:
      description: The packages to install.
      type: list
      elements: str
"""

import os
from collections.abc import Mapping
from functools import lru_cache

import yaml
from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import ArgumentTypeError, ArgumentValueError, RequiredError
from ansible.utils.display import Display

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError
from ansible_collections.smtp.relay.plugins.module_utils._plan.relay import preset_warnings
from ansible_collections.smtp.relay.plugins.module_utils._plan.role import plan
from ansible_collections.smtp.relay.plugins.module_utils._relayhost.grammar import described

_SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "roles", "postfix", "meta", "argument_specs.yml")


@lru_cache(maxsize=1)
def role_spec() -> dict:
    """The options of the role's main entry point: the one argument spec of the role."""
    with open(_SPEC, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["argument_specs"]["main"]["options"]


def plain(value):
    """Builtin containers and scalars: the validator deep-copies its input, and a deep copy of Ansible's lazy
    templated containers copies the whole template context (most of the plan's time on a fleet)."""
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def coerce(variables: dict) -> tuple[dict, dict]:
    """(typed variables, secrets): Ansible's own validation and coercion over the role's argument spec."""
    spec = role_spec()
    given = {name: plain(value) for name, value in dict(variables).items() if name in spec}
    try:
        result = ArgumentSpecValidator(spec).validate(given)
    except (OverflowError, ValueError):
        result = None  # check_type_int lets these out for "inf" and for more than 4300 digits
    if result is None or result.error_messages:
        raise AnsibleFilterError("; ".join(refusals(given, spec)))
    typed = dict(result.validated_parameters)
    secrets = {name: typed.pop(name, None) for name, option in spec.items() if option.get("no_log")}
    return typed, secrets


def refusals(given: dict, spec: dict) -> list[str]:
    """Why validation refused ``given``, one sentence per variable, each starting with the variable's name.

    Ansible's errors name the variable inside their sentence, or not at all ("missing required arguments: host").
    Each variable (and each list element and sub-option) is validated again alone, so every error of that run is
    about it: the refusal names it by structure, not by reading the sentence.
    """
    found = [problem for name, value in given.items() if (problem := _refusal(name, value, spec[name]))]
    return found or ["role variables: refused by the role's argument specification"]


def _errors(name: str, value, option: dict) -> list:
    """Ansible's validation of one value against one option: its errors, [] when it is accepted."""
    try:
        return ArgumentSpecValidator({name: option}).validate({name: value}).errors.errors
    except (OverflowError, ValueError) as e:
        return [ArgumentTypeError(str(e))]


def _refusal(path: str, value, option: dict) -> str | None:
    errors = _errors(path, value, option)
    if not errors:
        return None
    if option.get("type") == "list" and isinstance(value, list):
        for index, element in enumerate(value):
            problem = _element_refusal(f"{path}[{index}]", element, option)
            if problem:
                return problem
    return f"{path}: {_why(value, option, errors[0])}"


def _element_refusal(path: str, element, option: dict) -> str | None:
    if not _errors(path, [element], option):
        return None
    sub = option.get("options")
    if sub and isinstance(element, dict):
        for key, item in element.items():
            if key not in sub:
                return f"{path}.{key}: unknown field; accepted: {', '.join(sub)}"
            problem = _refusal(f"{path}.{key}", item, sub[key])
            if problem:
                return problem
        for key, sub_option in sub.items():
            if sub_option.get("required") and element.get(key) is None:
                return f"{path}.{key}: required"
    return f"{path}: {_shown(element, option)} is not {_kind(option.get('elements', 'raw'))}"


def _why(value, option: dict, error) -> str:
    if isinstance(error, RequiredError):
        return "required"
    if isinstance(error, ArgumentValueError) and option.get("choices"):
        return f"{_shown(value, option)} is not one of: {', '.join(map(str, option['choices']))}"
    return f"{_shown(value, option)} is not {_kind(option.get('type', 'str'), option.get('elements'))}"


def _kind(kind: str, elements: str | None = None) -> str:
    """What Ansible's conversion to ``kind`` accepts, in words."""
    if kind == "list" and elements:
        return "a list of " + {"dict": "dicts", "str": "text values", "int": "whole numbers"}.get(elements, elements)
    return {"int": "a whole number", "bool": "a boolean (true/false, yes/no, on/off, 1/0)", "str": "text"}.get(
        kind, "a " + kind
    )


def _shown(value, option: dict) -> str:
    return "(hidden)" if option.get("no_log") else described(value)


def relay_settings(variables, host=None):
    typed, secrets = coerce(variables)
    try:
        result = plan(typed, dict(host or {}), secrets)
    except SmtpRelayError as e:
        raise AnsibleFilterError(e.msg) from e
    # In the play's output, not only at -v: an operator must see a preset's deprecation before it breaks mail.
    for warning in preset_warnings(typed):
        Display().warning(warning)
    return result


class FilterModule:
    def filters(self):
        return {"_relay_settings": relay_settings}
