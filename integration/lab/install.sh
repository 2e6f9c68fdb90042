#!/usr/bin/env bash
# install.sh: install everything the VirtBackup lab needs on a Debian 12 host (run as root).
#
# Usage: bash integration/lab/install.sh
#
# Installs, without recommends: libvirt (daemon, clients, QEMU driver), QEMU (x86 system, utils),
# swtpm and its tools, OVMF, nbdkit, the libnbd tools, zstd, tar and the OpenSSH client, and for the
# guest-agent VM (agent-guest.sh, domain.sh create --agent): busybox-static, cpio and e2fsprogs (mkfs.ext4
# for its disk, dumpe2fs and debugfs for the tests), gcc with libc6-dev (the oracle guest's static workload), and
# the shell linter for integration/lint.sh, and libguestfs-tools (guestfish reads a file out of a served export:
# docs/RECOVERY.md; guestfs-kernel.sh gives its appliance a kernel). agent-guest.sh fetches the guest's kernel and
# qemu-guest-agent itself (apt-get download, unpacked into its cache, not installed on the host). tini: libvirtd
# runs under it (start-daemons.sh), so the QEMU and swtpm processes it leaves are reaped at once.
# Idempotent: when every package is already installed it returns at once, without touching apt.
# Nothing is started here; see start-daemons.sh (no systemd is assumed).
set -euo pipefail

PACKAGES=(
  libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu
  qemu-system-x86 qemu-utils
  swtpm swtpm-tools ovmf
  nbdkit libnbd-bin
  zstd tar openssh-client
  busybox-static cpio e2fsprogs
  gcc libc6-dev
  shellcheck
  libguestfs-tools
  tini
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: must run as root" >&2
  exit 1
fi

missing=()
for package in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  if [[ $status != installed ]]; then
    missing+=("$package")
  fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install.sh: all ${#PACKAGES[@]} lab packages are installed"
  exit 0
fi

echo "install.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
echo "install.sh: done"
