#!/usr/bin/env bash
# Build the HTML docs: `make docs` runs this with the venv on PATH and the work tree linked as smtp.relay under
# ANSIBLE_COLLECTIONS_PATH. Everything is rebuilt from scratch, so every run reports every warning; Sphinx runs
# with -W, so any warning fails the build.
#   .cache/docs/src    the Sphinx sources: docs/; README.md, which the guides (at the top, like README.md itself, so
#                      that its relative links resolve) include, and the files it links to; the RST antsibull-docs
#                      generates for every module, filter and role entry point. Warnings name these copies: edit
#                      docs/..., README.md or the plugin's documentation.
#   .cache/docs/html   the site (open index.html)
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
out=$root/.cache/docs
src=$out/src

rm -rf "$out"
mkdir -p "$src/roles/postfix"
cp -R "$root/docs/." "$src/"
cp "$root/README.md" "$src/README.md"
cp "$root/roles/postfix/README.md" "$src/roles/postfix/README.md"
# Other repository files the README links to (ci/*.yml...), at the same paths: in the included sections their links
# become downloads. Markdown files are left out: a page must be in a toctree (the role's README is, above).
grep -oE '\]\([^)#[:space:]]+' "$root/README.md" | cut -c3- | grep -vE '^[a-z]+:|\.md$' | sort -u |
  while read -r path; do
    if [ -f "$root/$path" ]; then install -D -m 0644 "$root/$path" "$src/$path"; fi
  done

# The collection as Ansible itself sees it (ansible-doc), from the work tree only (`make link`), never from another
# installed copy; a plugin whose docs do not parse fails the build.
export ANSIBLE_COLLECTIONS_PATH=$root/.cache/collections
if [ "$(readlink -f "$ANSIBLE_COLLECTIONS_PATH/ansible_collections/smtp/relay")" != "$root" ]; then
  echo "docs: $ANSIBLE_COLLECTIONS_PATH/ansible_collections/smtp/relay is not this work tree: run make link" >&2
  exit 1
fi
mkdir -m 0755 "$src/collection"
antsibull-docs --config-file "$root/docs/antsibull-docs.cfg" collection --use-current --squash-hierarchy \
  --fail-on-error --cleanup everything --dest-dir "$src/collection" smtp.relay

sphinx-build -b html -W --keep-going -q -d "$out/doctrees" "$src" "$out/html"
echo "docs: $out/html/index.html"
