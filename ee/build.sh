#!/usr/bin/env bash
# Build the execution environment, localhost/smtp-relay-ee:latest, with ansible-builder from ee/execution-environment.yml.
# `make ee` runs this with the venv on PATH (ansible-builder, pinned in ee/requirements.txt) after `make images`.
#
# The image is tagged with a hash of everything that goes into it (this directory, the collection as the work tree
# has it, the venv's package versions, the Debian image) and rebuilt only when that changes.
# What ansible-builder gets, in .cache/ee/ (ignored by git and the linters):
#   stage/      the definition, and beside it collections/: the work tree packed with ansible-galaxy (tracked and
#               untracked files, what the tests run; galaxy.yml's build_ignore applies)
#   pip/        pip.conf and wheels/, mounted read-only at /etc/xdg/pip during the build only: every pip install of
#               the build takes these wheels and nothing else (no index). They are built on the host, whose pip
#               reaches PyPI, at the versions the venv has: the image runs what the tests run, the build needs no
#               network or certificate inside the containers, and no pip setting stays in the image (only the
#               empty mount point).
#   context/    the Containerfile and build context ansible-builder writes
# The base image, localhost/smtp-relay-ee-base, comes from ee/Containerfile.base on the test image.
set -euo pipefail
root=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
export CONTAINERS_CONF="${CONTAINERS_CONF:-$root/tests/containers.conf}"
work=$root/.cache/ee
image=localhost/smtp-relay-ee
debian=localhost/smtprelay-debian:bookworm
definition=$root/ee/execution-environment.yml
for tool in python pip ansible-galaxy ansible-builder; do
  command -v "$tool" >/dev/null || { echo "ee: $tool not found: run make ee (it installs ee/requirements.txt)" >&2; exit 1; }
done
podman image exists "$debian" || { echo "ee: $debian is missing: run make images" >&2; exit 1; }
mkdir -p "$work"

# The collection, packed from the work tree into a temporary tree (caches and outputs stay out: git's ignore rules).
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
git -C "$root" ls-files -z -co --exclude-standard | while IFS= read -r -d '' f; do
  if [ -e "$root/$f" ] || [ -L "$root/$f" ]; then printf '%s\0' "$f"; fi
done | (mkdir "$tree/src" && tar -C "$root" --null --no-recursion -T - -cf - | tar -C "$tree/src" -xf -)
ansible-galaxy collection build --force --output-path "$tree/out" "$tree/src" >/dev/null
tarball=$(ls "$tree"/out/*.tar.gz)

# What the wheels are made of: the definition's pins, what ansible-builder installs in its builder stage, the
# collection's Python requirements (from its meta/execution-environment.yml), held to the venv's versions.
read_definition() {
  python - "$definition" "$root/meta/execution-environment.yml" <<'EOF'
import sys, pathlib, yaml
ee = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text())
meta = pathlib.Path(sys.argv[2])
deps = ee["dependencies"]
for pin in (deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"],
            ee["options"]["container_init"]["package_pip"], "bindep", "pyyaml", "packaging"):
    print(pin)
python = yaml.safe_load(meta.read_text())["dependencies"]["python"]
for line in (meta.parent.parent / python).read_text().splitlines():
    if line.split("#")[0].strip():
        print(line.split("#")[0].strip())
EOF
}
requirements=$(read_definition)
constraints=$(pip freeze --exclude-editable)

inputs=$(
  {
    cat "$root"/ee/execution-environment.yml "$root"/ee/Containerfile.base "$root"/ee/build.sh "$root"/ee/requirements.txt
    podman image inspect -f '{{.Id}}' "$debian"
    tar -xzOf "$tarball" MANIFEST.json  # names every file with its checksum
    echo "$requirements" "$constraints"
  } | sha256sum | cut -c1-12
)
if podman image exists "$image:$inputs"; then
  podman tag "$image:$inputs" "$image:latest"
  echo "ee: $image:latest is up to date ($inputs)"
  exit 0
fi

base_recipe=$( (cat "$root/ee/Containerfile.base"; podman image inspect -f '{{.Id}}' "$debian") | sha256sum | cut -c1-12)
if ! podman image exists "localhost/smtp-relay-ee-base:$base_recipe"; then
  echo "ee: building localhost/smtp-relay-ee-base:$base_recipe"
  podman build -q --build-arg "DEBIAN_IMAGE=$debian" -t "localhost/smtp-relay-ee-base:$base_recipe" \
    -f "$root/ee/Containerfile.base" "$root/ee" >/dev/null
fi
podman tag "localhost/smtp-relay-ee-base:$base_recipe" localhost/smtp-relay-ee-base:latest

rm -rf "$work/stage" "$work/context"
mkdir -p "$work/stage/collections"
cp "$definition" "$work/stage/"
cp "$tarball" "$work/stage/collections/smtp-relay.tar.gz"

wheels_recipe=$(echo "$requirements" "$constraints" | sha256sum | cut -c1-12)
if [ "$(cat "$work/pip/recipe" 2>/dev/null)" != "$wheels_recipe" ]; then
  echo "ee: building the wheels"
  rm -rf "$work/pip" && mkdir -p "$work/pip/wheels"
  echo "$constraints" >"$work/constraints.txt"
  echo "$requirements" >"$work/requirements.txt"
  pip wheel -q --wheel-dir "$work/pip/wheels" -c "$work/constraints.txt" -r "$work/requirements.txt"
  printf '[global]\nno-index = true\nfind-links = /etc/xdg/pip/wheels\n' >"$work/pip/pip.conf"
  echo "$wheels_recipe" >"$work/pip/recipe"
fi

# podman's layer cache knows the build's instructions and context, not the mounted wheels: other wheels, no cache.
cache=()
[ "$(cat "$work/pip/built" 2>/dev/null)" = "$wheels_recipe" ] || cache=(--no-cache)
echo "ee: building $image:$inputs"
ansible-builder build --file "$work/stage/execution-environment.yml" --context "$work/context" \
  --container-runtime podman --tag "$image:$inputs" --tag "$image:latest" "${cache[@]}" \
  --extra-build-cli-args "--volume $work/pip:/etc/xdg/pip:ro"
echo "$wheels_recipe" >"$work/pip/built"
# Earlier builds of the image: their tags go (the layers the next build can reuse stay until pruned).
podman images --format '{{.Repository}}:{{.Tag}}' "$image" | grep -v -x -e "$image:$inputs" -e "$image:latest" |
  xargs -r podman rmi >/dev/null 2>&1 || true
echo "ee: $image:latest ($inputs)"
