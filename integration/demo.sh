#!/usr/bin/env bash
# The main job on a demo VM, with all set-up on a fresh Debian 12 machine (as root):
# installs and starts libvirt/QEMU/swtpm/OVMF, builds virtbackup, creates a small demo VM (UEFI NVRAM,
# TPM 2.0, a qcow2 disk with known data), backs it up (full, then incremental after a guest-like write)
# into files, lists a stream, restores the chain as a new VM, starts it, and shows that disk, NVRAM and
# TPM state match the source. Everything it creates is removed at the end.
#   integration/demo.sh [--keep]      --keep leaves the demo VMs and files for a look around
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
keep=${1:-}

command -v dotnet >/dev/null || { echo "demo: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }
bash integration/lab/install.sh
bash integration/lab/start-daemons.sh
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/VirtBackup.Cli -c Release -nologo -clp:ErrorsOnly >/dev/null
vb="$root/src/VirtBackup.Cli/bin/Release/net10.0/virtbackup"

name="demo-$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
copy="$name-copy"
work=$(mktemp -d /tmp/virtbackup-demo.XXXXXX)
state="$work/state"
cleanup() {
  if [ "$keep" != "--keep" ]; then
    virsh -q destroy "$copy" >/dev/null 2>&1 || true
    virsh -q undefine "$copy" --nvram --tpm --checkpoints-metadata >/dev/null 2>&1 || true
    rm -f /var/lib/libvirt/images/"$copy"-*.qcow2 /var/lib/libvirt/images/"$copy"*.qcow2
    bash integration/lab/domain.sh remove "$name" >/dev/null 2>&1 || true
    rm -rf "$work"
  else
    echo "kept: VMs $name and $copy, files in $work"
  fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }

step "creating demo VM $name (TCG, OVMF + NVRAM, swtpm TPM 2.0, 256 MiB qcow2 disk with data, zeros and holes)"
bash integration/lab/domain.sh create "$name" --disk-size 256M --fill >/dev/null
virsh -q dominfo "$name" | grep -E '^(Name|UUID|State)'

step "full backup: virtbackup backup --domain $name > full.tar"
"$vb" backup --domain "$name" --state-dir "$state" > "$work/full.tar"
tar -tvf "$work/full.tar"

step "a guest-like write of 2 MiB at 8 MiB, then an incremental backup"
bash integration/lab/domain.sh write "$name" vda 8M 2M 0x77 >/dev/null
"$vb" backup --domain "$name" --state-dir "$state" > "$work/inc.tar"

step "virtbackup list < inc.tar"
"$vb" list < "$work/inc.tar"
step "virtbackup verify < inc.tar"
"$vb" verify < "$work/inc.tar" && echo "verify: complete and intact"

# What the source looks like at the last backup instant: the VM is paused only while we copy.
virsh -q suspend "$name" >/dev/null
qemu-img convert -U -O raw /var/lib/libvirt/images/"$name"-vda.qcow2 "$work/source-vda.raw"
virsh -q resume "$name" >/dev/null

step "restore the chain as $copy: full, then the incremental"
"$vb" restore --as "$copy" --define < "$work/full.tar"
"$vb" restore --as "$copy" --define < "$work/inc.tar"

step "comparing the restored VM with the backup"
copy_uuid=$(virsh domuuid "$copy")
copy_disk=$(virsh domblklist "$copy" | awk '$1 == "vda" {print $2}')
qemu-img compare -U "$work/source-vda.raw" "$copy_disk" && echo "disk vda: identical to the source at the last backup"
mkdir -p "$work/x" && tar -xf "$work/inc.tar" -C "$work/x"
cmp "$work/x/state/nvram/${name}_VARS.fd" /var/lib/libvirt/qemu/nvram/"${copy}"_VARS.fd \
  && echo "NVRAM: identical to the backup's"
cmp "$work/x/state/tpm/tpm2-00.permall" /var/lib/libvirt/swtpm/"$copy_uuid"/tpm2/tpm2-00.permall \
  && echo "TPM state: identical to the backup's"
stat -c 'TPM state file: %U:%G %a %n' /var/lib/libvirt/swtpm/"$copy_uuid"/tpm2/tpm2-00.permall

step "starting the restored VM: swtpm must accept its TPM state"
virsh -q start "$copy"
sleep 3
virsh -q domstate "$copy"
if grep -qi error /var/log/swtpm/libvirt/qemu/"$copy"-swtpm.log 2>/dev/null; then
  echo "swtpm reported errors:"; cat /var/log/swtpm/libvirt/qemu/"$copy"-swtpm.log; exit 1
fi
echo "swtpm log: no errors"
echo
echo "demo complete"
