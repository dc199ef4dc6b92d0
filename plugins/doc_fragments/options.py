# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Options that several modules take with the same meaning, documented once.

    Options that only look alike (C(config_dir) of the modules that write, C(nameservers), C(timeout)) say different
    things in each module and stay there.
    """

    # The Postfix configuration a read-only module reads (relay_info, relay_check).
    READ_CONFIG_DIR = r"""
options:
  config_dir:
    description: Postfix configuration directory to read.
    type: path
    default: /etc/postfix
"""

    # The port of the nameservers option, checked by the same rule wherever it is taken (allowlist_request,
    # sender_check).
    DNS_PORT = r"""
options:
  dns_port:
    description: Port of O(nameservers), 1 to 65535. Port 0 is refused, not replaced by 53.
    type: int
    default: 53
"""
