# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """The attributes the collection's modules share, with ansible.builtin.action_common_attributes.

    A module lists ansible.builtin.action_common_attributes (the descriptions), one of READ_ONLY, WRITES_FILES and
    SENDS_MAIL, and ACTION_GROUP when it is in the smtp.relay.relay action group; its own C(attributes) then only add
    details.
    """

    # Reads and reports; never changes the managed host, so it runs fully in check mode and has no diff.
    READ_ONLY = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

    # Writes files on the managed host: check mode predicts the change without writing, diff mode shows it.
    WRITES_FILES = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: posix
"""

    # Sends mail through the host's Postfix and changes nothing else: check mode sends nothing, there is no diff.
    SENDS_MAIL = r"""
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: posix
"""

    # In the action group of meta/runtime.yml (action_groups: relay).
    ACTION_GROUP = r"""
attributes:
  action_group:
    description: Use C(group/smtp.relay.relay) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - smtp.relay.relay
"""
