# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: the one exception type its module_utils raise."""

from __future__ import annotations


class SmtpRelayError(Exception):
    """A problem found deep in the logic, turned into fail_json in exactly one place.

    ``details`` become extra keys of the failed result, so they must never hold a secret.
    """

    def __init__(self, msg: str, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details
