# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the secret values in a module's raw arguments, and the module class that hides them.

Ansible hides the value of a ``no_log`` option wherever it appears in a module's output: the result, the echo of
the arguments (``invocation.module_args``), the journal. Here a secret is a value, not an option: the value of a
main.cf parameter whose name says it is a credential, the entries of a table marked secret (a ``no_log`` option
would hide every value of it, and every table name and parameter). Adding those values to
``module.no_log_values`` once ``AnsibleModule()`` has returned is too late: inside its constructor AnsibleModule
validates the arguments and, when it refuses one (any other option's bad value is enough), fails at once echoing
them all; when it accepts them, it logs them to the journal. Between making its ``no_log_values`` and validating,
it reads the raw arguments (its ``_load_params`` step): :func:`hiding` registers the secrets there, found in every
shape Ansible may turn the raw arguments into (the module passes Ansible's own converters), so that no output of
the module, Ansible's own refusals included, ever holds one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping

from ansible_collections.smtp.relay.plugins.module_utils._postfix.postconf import is_secret_name

_SPACE = " \t\r\n\v\f"
# What Ansible's bool reads as false (its BOOLEANS_FALSE, lower-cased): any other value may mean "secret".
_FALSE = frozenset({"n", "no", "off", "0", "0.0", "false", "f"})


def _shaped(convert: Callable, value):
    """``value`` as Ansible's ``convert`` (check_type_dict, check_type_list) would turn it, else as given."""
    try:
        return convert(value)
    except Exception:  # pylint: disable=broad-exception-caught  # a value Ansible refuses is echoed as given
        return value


def _leaves(value) -> Iterator[str]:
    """Every text and number inside ``value``, as Ansible collects a ``no_log`` value (booleans and null are not)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, str):
        yield value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)


def forms(values: Iterable[str]) -> set[str]:
    """Each value as given, trimmed (as Postfix and the modules store it), and escaped as Python's repr shows it
    (the journal logs a dict option as its repr, where a newline in a value is the two characters \\n).

    White space alone is left out: hiding it would turn every blank of the output into stars, and hide nothing.
    """
    found = set()
    for value in values:
        if value.strip(_SPACE):
            found.update((value, value.strip(_SPACE), repr(value)[1:-1]))
    return found


def setting_secrets(settings, as_dict: Callable) -> set[str]:
    """The values of the secret-named parameters in a settings option (postconf's settings, postfix_apply's main_cf,
    relay_check's settings)."""
    settings = _shaped(as_dict, settings)
    if not isinstance(settings, Mapping):
        return set()
    return forms(leaf for name, value in settings.items() if is_secret_name(str(name)) for leaf in _leaves(value))


def entry_secrets(entries, as_dict: Callable) -> set[str]:
    """The values of a secret table's entries, whatever their shape."""
    return forms(_leaves(_shaped(as_dict, entries)))


def table_secrets(tables, as_dict: Callable, as_list: Callable) -> set[str]:
    """The entries' values of a list of secret tables (postfix_apply's secret_maps)."""
    tables = _shaped(as_list, tables)
    if not isinstance(tables, list):
        return set()
    found = set()
    for given in tables:
        table = _shaped(as_dict, given)
        # A table that is not a mapping is refused, echoed whole: all of it is hidden.
        found |= entry_secrets(table.get("entries"), as_dict) if isinstance(table, Mapping) else forms(_leaves(table))
    return found


def flagged(value) -> bool:
    """Whether a ``secret`` flag may be true: unless it is plainly false, its table is treated as secret (a flag
    Ansible refuses, such as ``maybe``, has the table echoed in the refusal)."""
    if value is None or value is False:
        return False
    return not (isinstance(value, (str, int, float)) and str(value).strip().lower() in _FALSE)


def hiding(module_class: type, secrets_of: Callable[[dict], Iterable[str]]) -> type:
    """``module_class`` (AnsibleModule) hiding ``secrets_of(raw arguments)`` from every output (see above).

    The class is passed in so that this file imports nothing from Ansible. ``secrets_of`` must not raise.
    """

    class Hiding(module_class):
        def _load_params(self):
            super()._load_params()
            self.no_log_values.update(secrets_of(self.params))

    return Hiding
