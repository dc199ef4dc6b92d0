#!/bin/bash
# Build the local container images the tests and the demo use; no registry is reachable,
# so the base comes from debootstrap. Each image is tagged with a hash of its recipe and
# rebuilt only when the recipe changes.
#
# One managed-host image per Debian release the role is tested on, all from the same recipe:
# localhost/smtprelay-debian:bullseye (Postfix 3.5), :bookworm (3.7, the default; the peers build on it),
# :trixie (3.10).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/../containers.conf}"

# openssh-server: `make bench` also measures the SSH transport; the service is off unless a benchmark starts it.
base_packages=python3,python3-apt,systemd,systemd-sysv,dbus,ca-certificates,iproute2,procps,sudo,apt-utils,openssh-server
# Bump when the steps below change (the hash names the image).
recipe_version=3

recipe_hash() {
    printf "%s\n" "$recipe_version" "$1" "$base_packages" | sha256sum | cut -c1-12
}

rootfs=""
trap 'rm -rf "$rootfs"' EXIT
build_base() {
    local suite="$1" image="$2"
    rootfs="$(mktemp -d)"
    echo "building $image ($suite) with debootstrap (about a minute)"
    debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" >/dev/null
    # An empty machine-id lets systemd generate one per container.
    : > "$rootfs/etc/machine-id"
    # Nothing listens on the network unless a test asks: sshd stays off (the benchmark starts it).
    rm -f "$rootfs"/etc/systemd/system/multi-user.target.wants/ssh.service "$rootfs"/etc/systemd/system/sshd.service
    # Package lists stay, as on a real server: the role refreshes them only when older than a day.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | podman import \
        --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$image" >/dev/null
    rm -rf "$rootfs" && rootfs=""
}

for suite in bookworm bullseye trixie; do
    recipe="$(recipe_hash "$suite")"
    image="localhost/smtprelay-debian:$recipe"
    if ! podman image exists "$image"; then
        build_base "$suite" "$image"
    fi
    podman tag "$image" "localhost/smtprelay-debian:$suite"
    if [ "$suite" = bookworm ]; then base="$image" base_recipe="$recipe"; fi
done

peers_recipe="$( (echo "$base_recipe"; cat "$here/Containerfile.peers") | sha256sum | cut -c1-12)"
peers="localhost/smtprelay-peers:$peers_recipe"
if ! podman image exists "$peers"; then
    echo "building $peers"
    podman build -q --build-arg "BASE=$base" -t "$peers" -f "$here/Containerfile.peers" "$here" >/dev/null
fi
podman tag "$peers" localhost/smtprelay-peers:latest
