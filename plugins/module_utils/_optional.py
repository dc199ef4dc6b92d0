# Copyright: Contributors to the smtp.relay project
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Private to this collection: optional Python libraries, found one way and reported one way.

The module that uses a library imports it (``try: import x``) and records the outcome as an
:class:`OptionalLibrary`: :meth:`OptionalLibrary.found` in ``else:``, :meth:`OptionalLibrary.missing`
in ``except ImportError:`` (it keeps the traceback). Then, where the library is needed:

- a feature that cannot do without it calls ``library.require(reason)``: :class:`MissingLibrary` (an
  SmtpRelayError) worded as Ansible's ``missing_required_lib`` and carrying the import traceback as
  ``exception``, so the module's one ``except SmtpRelayError: fail_json(msg=e.msg, **e.details)`` reports
  it the way Ansible modules do;
- a feature that can go on without it says so in its result with ``library.not_installed(what)`` and
  ``library.install_hint``.
"""

from __future__ import annotations

import platform
import sys
import traceback
from dataclasses import dataclass

from ansible_collections.smtp.relay.plugins.module_utils._errors import SmtpRelayError


def missing_required_lib(library: str, reason: str | None = None, url: str | None = None) -> str:
    """The message of ``ansible.module_utils.basic.missing_required_lib`` (a unit test keeps the two equal)."""
    msg = f"Failed to import the required Python library ({library}) on {platform.node()}'s Python {sys.executable}."
    if reason:
        msg += f" This is required {reason}."
    if url:
        msg += f" See {url} for more info."
    return msg + (
        " Please read the module documentation and install it in the appropriate location."
        " If the required library is installed, but Ansible is using the wrong Python interpreter,"
        " please consult the documentation on ansible_python_interpreter"
    )


@dataclass(frozen=True)
class OptionalLibrary:
    """A Python library some features need: its pip name, its Debian package, and why it did not import."""

    name: str
    debian: str
    import_error: str | None = None  # the traceback of the failed import; None: importable

    @classmethod
    def found(cls, name: str, debian: str) -> OptionalLibrary:
        return cls(name, debian)

    @classmethod
    def missing(cls, name: str, debian: str) -> OptionalLibrary:
        """Call in ``except ImportError:``; keeps the traceback for ``fail_json(exception=...)``."""
        return cls(name, debian, traceback.format_exc())

    @property
    def available(self) -> bool:
        return self.import_error is None

    @property
    def install_hint(self) -> str:
        return f"install {self.debian} (Debian) or {self.name} (pip) for the Python the module runs with"

    def not_installed(self, consequence: str) -> str:
        """One line for a result that goes on without the library, e.g. a skipped check."""
        return f"{self.name} is not installed on the host: {consequence}"

    def require(self, reason: str) -> None:
        """Raise :class:`MissingLibrary` unless the library imported; ``reason`` completes "This is required ..."."""
        if not self.available:
            raise MissingLibrary(self, reason)


class MissingLibrary(SmtpRelayError):
    """A feature that was asked for needs a library the host's Python does not have."""

    def __init__(self, library: OptionalLibrary, reason: str):
        super().__init__(
            f"{missing_required_lib(library.name, reason=reason)}. Debian package: {library.debian}",
            missing_library=library.name,
            exception=library.import_error,
        )
