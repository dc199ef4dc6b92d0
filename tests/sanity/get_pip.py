# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for the get-pip.py that ansible-test downloads from a host these machines cannot reach.

ansible-test runs it inside each fresh sanity venv with pip's install arguments: bootstrap the pip
bundled with Python, then let it install the pinned pip (and the rest) from the package index.
"""

import ensurepip
import os
import subprocess
import sys

# ensurepip blanks pip's configuration in os.environ; the real install must see the machine's.
environment = dict(os.environ)
ensurepip.bootstrap()
# --no-setuptools/--no-wheel are get-pip's own options (do not install those): pip has no such flags.
arguments = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *arguments], env=environment))
