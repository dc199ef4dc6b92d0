# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

# Documentation: allowlist_fleet_csv.yml and allowlist_fleet_markdown.yml (one file, two filters).

from ansible.errors import AnsibleFilterError

from ansible_collections.smtp.relay.plugins.module_utils._allowlist.render import render_csv, render_fleet_markdown
from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError


def allowlist_fleet_csv(requests):
    try:
        return render_csv(requests)
    except SmtpRelayError as e:
        raise AnsibleFilterError(e.msg) from e


def allowlist_fleet_markdown(requests, title="Allowlist request"):
    try:
        return render_fleet_markdown(requests, title)
    except SmtpRelayError as e:
        raise AnsibleFilterError(e.msg) from e


class FilterModule:
    def filters(self):
        return {
            "allowlist_fleet_csv": allowlist_fleet_csv,
            "allowlist_fleet_markdown": allowlist_fleet_markdown,
        }
