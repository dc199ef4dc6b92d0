# SPDX-License-Identifier: GPL-3.0-or-later
"""Sphinx settings for the smtp.relay docs site (`make docs`; docs/build.sh assembles the sources).

Adapted from what `antsibull-docs sphinx-init` writes, for a build that must pass with -W on a machine without
internet access: no intersphinx (its inventories would be downloaded); the few Ansible docsite labels the generated
pages refer to are linked to docs.ansible.com directly instead.
"""

from docutils import nodes

project = "smtp.relay"
copyright = "smtp.relay contributors"
author = "smtp.relay contributors"

html_title = "smtp.relay documentation"
html_short_title = "smtp.relay"

extensions = ["sphinx_antsibull_ext", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# README.md is only included (by index.md and the guides), not a page of its own.
exclude_patterns = ["README.md"]
# The guides are README sections: its ### headings come under the page's # title, and docutils nests them so.
suppress_warnings = ["myst.header"]
root_doc = "index"

pygments_style = "ansible"
highlight_language = "YAML+Jinja"

html_theme = "sphinx_ansible_theme"
html_show_sphinx = False
html_domain_indices = False
html_use_index = False
html_copy_source = False

default_role = "any"
# Every reference must resolve: a broken one is a warning, and the build runs with -W.
nitpicky = True

ANSIBLE_DOCS = "https://docs.ansible.com/projects/ansible/latest/"
# Labels of the Ansible docsite used by antsibull-docs' pages: (page, title for a reference without one).
ANSIBLE_LABELS = {
    "common_return_values": ("reference_appendices/common_return_values.html", "Return Values"),
    "ansible_configuration_settings": ("reference_appendices/config.html", "Ansible Configuration Settings"),
}


def ansible_docsite_label(app, env, node, contnode):
    """Resolve a :ref: to one of ANSIBLE_LABELS as a link to docs.ansible.com; other references stay missing."""
    if node.get("refdomain") != "std" or node.get("reftype") != "ref" or node["reftarget"] not in ANSIBLE_LABELS:
        return None
    page, title = ANSIBLE_LABELS[node["reftarget"]]
    reference = nodes.reference("", "", internal=False, refuri=ANSIBLE_DOCS + page)
    reference += contnode if node.get("refexplicit") else nodes.inline(title, title)
    return reference


def setup(app):
    app.connect("missing-reference", ansible_docsite_label)
