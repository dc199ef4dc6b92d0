# SPDX-License-Identifier: GPL-3.0-or-later
"""Real test peers (SMTP relay, certificates, received-mail records) started by the tests."""
