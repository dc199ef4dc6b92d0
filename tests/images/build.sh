#!/bin/bash
# Build the local container images the tests and the demo use; no registry is reachable,
# so the base comes from debootstrap. Each image is tagged with a hash of its recipe and
# rebuilt only when the recipe changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$here/../containers.conf}"

suite=bookworm
# openssh-server: `make bench` also measures the SSH transport; the service is off unless a benchmark starts it.
base_packages=python3,python3-apt,systemd,systemd-sysv,dbus,ca-certificates,iproute2,procps,sudo,apt-utils,openssh-server
# Bump when the steps below change (the hash names the image).
recipe_version=3
base_recipe="$(printf "%s\n" "$recipe_version" "$suite" "$base_packages" | sha256sum | cut -c1-12)"
base="localhost/smtprelay-debian:$base_recipe"

if ! podman image exists "$base"; then
    rootfs="$(mktemp -d)"
    trap 'rm -rf "$rootfs"' EXIT
    echo "building $base with debootstrap (about a minute)"
    debootstrap --variant=minbase --include="$base_packages" "$suite" "$rootfs" >/dev/null
    # An empty machine-id lets systemd generate one per container.
    : > "$rootfs/etc/machine-id"
    # Nothing listens on the network unless a test asks: sshd stays off (the benchmark starts it).
    rm -f "$rootfs"/etc/systemd/system/multi-user.target.wants/ssh.service "$rootfs"/etc/systemd/system/sshd.service
    # Package lists stay, as on a real server: the role refreshes them only when older than a day.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb
    tar -C "$rootfs" -c . | podman import \
        --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' - "$base" >/dev/null
fi
podman tag "$base" localhost/smtprelay-debian:bookworm

peers_recipe="$( (echo "$base_recipe"; cat "$here/Containerfile.peers") | sha256sum | cut -c1-12)"
peers="localhost/smtprelay-peers:$peers_recipe"
if ! podman image exists "$peers"; then
    echo "building $peers"
    podman build -q --build-arg "BASE=$base" -t "$peers" -f "$here/Containerfile.peers" "$here" >/dev/null
fi
podman tag "$peers" localhost/smtprelay-peers:latest
