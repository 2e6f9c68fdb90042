#!/usr/bin/env bash
# guestfs-kernel.sh: a kernel for libguestfs's appliance on a host that has none installed.
#
# Usage: bash integration/lab/guestfs-kernel.sh
#
# supermin builds libguestfs's appliance from the host's own kernel (/boot/vmlinuz-* with /lib/modules/*).
# A container or a minimal host has none, and installing one pulls initramfs-tools and udev. So, as
# agent-guest.sh does for its guest, Debian's cloud kernel package (the one linux-image-cloud-amd64 depends on)
# is fetched with `apt-get download`, unpacked into /var/lib/virtbackup-lab/guestfs-kernel once (depmod run on
# it) and not installed. Prints the environment supermin needs, one NAME=VALUE a line:
#   SUPERMIN_KERNEL=...  SUPERMIN_MODULES=...  SUPERMIN_KERNEL_VERSION=...
# Prints nothing when the host has a kernel with its modules (supermin finds it). Creates /lib/modules when it
# is missing: supermin looks at it even when told where the modules are. Run as root.
set -euo pipefail

CACHE=/var/lib/virtbackup-lab/guestfs-kernel

die() {
  echo "guestfs-kernel.sh: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
for kernel in /boot/vmlinuz-*; do
  if [[ -e $kernel && -d /lib/modules/${kernel#/boot/vmlinuz-} ]]; then
    exit 0
  fi
done

mkdir -p /lib/modules "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# The package name; awk reads to the end (no early exit: apt-cache would get SIGPIPE under pipefail).
kernel_package() {
  apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ && !found { print $2; found = 1 }'
}

if [[ ! -s $CACHE/release ]]; then
  package=$(kernel_package)
  [[ -n $package ]] || { apt-get update >/dev/null && package=$(kernel_package); }
  [[ -n $package ]] || die "no linux-image-*-cloud-amd64 package found"
  work=$(mktemp -d /tmp/guestfs-kernel.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  # _apt cannot write into a root-only mktemp directory: that only costs a warning.
  (cd "$work" && apt-get download -q "$package" >/dev/null 2>&1) || die "apt-get download $package failed"
  rm -rf "$CACHE/root"
  dpkg-deb -x "$work"/*.deb "$CACHE/root"
  modules=("$CACHE"/root/lib/modules/*)
  release=$(basename "${modules[0]}")
  depmod -b "$CACHE/root" "$release"
  echo "$release" >"$CACHE/release"
fi

release=$(cat "$CACHE/release")
echo "SUPERMIN_KERNEL=$CACHE/root/boot/vmlinuz-$release"
echo "SUPERMIN_MODULES=$CACHE/root/lib/modules/$release"
echo "SUPERMIN_KERNEL_VERSION=$release"
