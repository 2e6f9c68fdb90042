#!/usr/bin/env bash
# agent-guest.sh: build (once) the kernel and initramfs of the lab's guest-agent VM: a tiny Linux that boots
# under TCG in seconds, mounts the ext4 file system on its first virtio disk (/dev/vda) at /mnt and runs the
# real qemu-guest-agent on the virtio-serial port org.qemu.guest_agent.0, so --freeze has something to freeze.
#
# With --oracle it builds the oracle guest instead (its own cache, /var/lib/virtbackup-lab/oracle-guest): the same
# guest plus efivarfs and the consistency oracle (integration/lab/oracle/oracle.c, built here statically), which
# /init starts on DEVICE when the kernel command line has `vboracle=DEVICE` (domain.sh create --oracle): it moves a
# TPM NV counter, a UEFI variable and a disk block in lockstep and logs to the serial console.
#
# Usage: bash integration/lab/agent-guest.sh [--oracle] [--rebuild]
#   Prints two lines: the kernel path, then the initramfs path, under /var/lib/virtbackup-lab/agent-guest/.
#   A second run finds them built (for this version of the script) and only prints them.
#
# Where the parts come from (Debian 12):
#   - the kernel: the linux-image-*-cloud-amd64 package that linux-image-cloud-amd64 depends on, fetched with
#     `apt-get download` and unpacked into the cache, not installed (that would pull udev and initramfs-tools
#     into the host). Its ext4 is built in; virtio_pci, virtio_blk and virtio_console are modules, loaded by
#     /init in dependency order (read from each module's depends= field).
#   - qemu-ga: from the qemu-guest-agent package, fetched and unpacked the same way (installing it would add an
#     init script to the host); its shared libraries (what ldd lists) and the loader come from the host.
#   - busybox: busybox-static from the host (install.sh installs it), as /init's shell and tools.
# The guest's /init: mounts proc, sys and devtmpfs; loads the modules; mounts /dev/vda (ext4, noatime, a
# 600 s journal commit interval, page-cache writeback off, so a file written through the agent stays in the
# page cache until a freeze or sync flushes it); links /dev/virtio-ports/org.qemu.guest_agent.0 (no udev
# here); then keeps qemu-ga running. It logs to the serial console (ttyS0).
# Run as root. One build at a time (flock).
set -euo pipefail

CACHE=/var/lib/virtbackup-lab/agent-guest
MODULES=(virtio_pci virtio_blk virtio_console)
oracle=no
rebuild=no
for argument in "$@"; do
  case $argument in
    --oracle) oracle=yes ;;
    --rebuild) rebuild=yes ;;
    *) echo "agent-guest.sh: unknown option '$argument'" >&2; exit 2 ;;
  esac
done
if [[ $oracle == yes ]]; then
  CACHE=/var/lib/virtbackup-lab/oracle-guest
  MODULES+=(efivarfs)
fi
SELF=$(readlink -f "${BASH_SOURCE[0]}")
ORACLE_SOURCE=$(dirname "$SELF")/oracle/oracle.c

die() {
  echo "agent-guest.sh: $*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
command -v busybox >/dev/null || die "busybox not found; run integration/lab/install.sh first (busybox-static)"
command -v cpio >/dev/null || die "cpio not found; run integration/lab/install.sh first"
[[ $oracle == no ]] || command -v gcc >/dev/null || die "gcc not found; run integration/lab/install.sh first (gcc, libc6-dev)"

mkdir -p "$CACHE"
chmod 0755 /var/lib/virtbackup-lab "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# The build is current when it was made by this very script.
stamp=$(cat "$SELF" "$ORACLE_SOURCE" | sha256sum | cut -d' ' -f1)
if [[ $rebuild != yes && -s $CACHE/vmlinuz && -s $CACHE/initrd.img && $(cat "$CACHE/stamp" 2>/dev/null) == "$stamp" ]]; then
  echo "$CACHE/vmlinuz"
  echo "$CACHE/initrd.img"
  exit 0
fi

work=$(mktemp -d /tmp/agent-guest.XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1. The packages, unpacked (apt-get download needs the package lists; update them once when it fails).
kernel_package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[[ -n $kernel_package ]] || { apt-get update >/dev/null; kernel_package=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }'); }
[[ -n $kernel_package ]] || die "no linux-image-*-cloud-amd64 package found"
(
  cd "$work"
  # _apt cannot write into a root-only mktemp directory: that only costs a warning.
  apt-get download -q "$kernel_package" qemu-guest-agent >/dev/null 2>&1 ||
    { apt-get update >/dev/null && apt-get download -q "$kernel_package" qemu-guest-agent >/dev/null 2>&1; } ||
    die "apt-get download $kernel_package qemu-guest-agent failed"
)
mkdir "$work/pkg"
for deb in "$work"/*.deb; do
  dpkg-deb -x "$deb" "$work/pkg"
done
release=$(basename "$(ls -d "$work"/pkg/lib/modules/*)")

# 2. The initramfs tree.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mnt,run,tmp,lib/modules,usr/sbin,var}
ln -s ../run "$root/var/run"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp "$work/pkg/usr/sbin/qemu-ga" "$root/usr/sbin/qemu-ga"
if [[ $oracle == yes ]]; then
  gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/oracle" "$ORACLE_SOURCE"
fi
# Each shared library ldd resolves, at the path the loader looks it up, and the loader itself.
if ldd "$root/usr/sbin/qemu-ga" | grep -q 'not found'; then
  die "qemu-ga needs libraries this host lacks: $(ldd "$root/usr/sbin/qemu-ga" | grep 'not found' | tr -s ' \t\n' ' ')"
fi
for lib in $(ldd "$root/usr/sbin/qemu-ga" | awk '/=> \// { print $3 } /^\t\/lib/ { print $1 }'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

# Modules in load order: each after what its depends= field names.
declare -A seen=()
order=()
add_module() {
  local name=$1 file dep
  [[ -z ${seen[$name]:-} ]] || return 0
  seen[$name]=1
  file=$(find "$work/pkg/lib/modules/$release" -name "$name.ko" | head -n 1)
  [[ -n $file ]] || die "module $name.ko not found in $kernel_package"
  for dep in $(grep -a -o 'depends=[a-z0-9_,-]*' "$file" | head -n 1 | cut -d= -f2 | tr ',' ' '); do
    add_module "$dep"
  done
  cp "$file" "$root/lib/modules/"
  order+=("$name")
}
for module in "${MODULES[@]}"; do
  add_module "$module"
done

cat >"$root/init" <<INIT
#!/bin/sh
export PATH=/bin:/usr/sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
log() { echo "virtbackup-lab: \$*" >/dev/console; }
for m in ${order[*]}; do insmod /lib/modules/\$m.ko || log "insmod \$m failed"; done
# Dirty pages stay in the page cache until a sync or freeze writes them (no periodic writeback).
sysctl -q -w vm.dirty_writeback_centisecs=0 vm.dirty_expire_centisecs=360000
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done
if mount -t ext4 -o noatime,commit=600,noinit_itable /dev/vda /mnt; then log "mounted /dev/vda on /mnt"; else log "mounting /dev/vda failed"; fi
port=
for d in /sys/class/virtio-ports/*; do
  [ "\$(cat "\$d/name" 2>/dev/null)" = org.qemu.guest_agent.0 ] && port=/dev/\${d##*/}
done
mkdir -p /dev/virtio-ports
[ -n "\$port" ] && ln -sf "\$port" /dev/virtio-ports/org.qemu.guest_agent.0
log "guest agent port: \${port:-none}"
oracle_disk=\$(sed -n 's/.*vboracle=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
if [ -n "\$oracle_disk" ]; then
  mkdir -p /sys/firmware/efi/efivars
  mount -t efivarfs efivarfs /sys/firmware/efi/efivars || log "mounting efivarfs failed"
  i=0
  while [ ! -b "\$oracle_disk" ] && [ \$i -lt 200 ]; do sleep 0.05; i=\$((i + 1)); done
  # Under a loaded host the TPM's first commands can time out and the driver gives up: probe it again.
  i=0
  while [ ! -c /dev/tpm0 ] && [ \$i -lt 10 ]; do
    log "no /dev/tpm0 yet: probing the TPM again"
    echo MSFT0101:00 >/sys/bus/acpi/drivers/tpm_crb/bind 2>/dev/null
    sleep 1
    i=\$((i + 1))
  done
  oracle "\$oracle_disk" &
fi
while true; do
  qemu-ga -m virtio-serial -p /dev/virtio-ports/org.qemu.guest_agent.0 -f /run/qemu-ga.pid >/dev/console 2>&1
  log "qemu-ga exited (\$?); restarting"
  sleep 1
done
INIT
chmod 0755 "$root/init"

# 3. Into the cache: kernel and a gzipped newc cpio, readable by the qemu user.
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) >"$work/initrd.img"
install -m 0644 "$work/pkg/boot/vmlinuz-$release" "$CACHE/vmlinuz"
install -m 0644 "$work/initrd.img" "$CACHE/initrd.img"
echo "$stamp" >"$CACHE/stamp"
echo "agent-guest.sh: built $CACHE (kernel $release, modules ${order[*]})" >&2
echo "$CACHE/vmlinuz"
echo "$CACHE/initrd.img"
