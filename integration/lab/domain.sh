#!/usr/bin/env bash
# domain.sh: create, write to and remove small test VMs for the VirtBackup lab (firmware-only, or with a
# real guest agent).
#
# Usage:
#   domain.sh create NAME [--disks N] [--disk-size SIZE] [--fill] [--agent [--agent-timeout SECONDS]] [--oracle] [--force]
#       Defines and starts NAME: q35, TCG (type='qemu'), 128 MiB, OVMF_CODE_4M with an NVRAM from the
#       OVMF_VARS_4M template, a TPM 2.0 (tpm-crb, swtpm emulator) and N (1..8, default 1) qcow2 disks
#       vda, vdb, ... at /var/lib/libvirt/images/NAME-vdX.qcow2 of SIZE bytes (qemu-img syntax, default
#       256M, at least 32M). Every disk frontend gets share-rw=on so qemu-img/qemu-io may open the live
#       image. With --fill each disk is written before start as `domain.sh layout` describes. Prints the
#       domain's UUID on the last line. Fails if NAME exists; removes what it made when it fails.
#       With --agent the VM runs a real Linux with qemu-guest-agent (agent-guest.sh builds it once): vda
#       holds an ext4 file system (made before the first boot, no partition table) that the guest mounts at
#       /mnt, the kernel and initramfs boot directly (through OVMF), 256 MiB, a virtio-serial channel
#       org.qemu.guest_agent.0, the serial console logged to /var/lib/libvirt/images/NAME-console.log.
#       create returns once the agent answers guest-ping (within --agent-timeout, default 300 s: under TCG on a
#       loaded host a boot took over 120 s) and reports on stderr how long that took. --agent excludes --fill.
#       --oracle (implies --agent, needs --disks 2 or more): the guest also runs the consistency oracle on
#       /dev/vdb (agent-guest.sh: a TPM NV counter, a UEFI variable and vdb's first block moved in lockstep),
#       logging "ORACLE ..." lines to the serial console.
#   domain.sh write NAME NODE_OR_DISK OFFSET LENGTH PATTERN
#       A guest-like write into the running VM through HMP `qemu-io` followed by `flush` (so the qcow2
#       metadata reaches the file). NODE_OR_DISK is a block node name (libvirt-1-format) or a target
#       (vda). OFFSET and LENGTH use qemu-io syntax (8M, 65536). PATTERN is a byte (0x77), `zero`
#       (write -z) or `random` (bytes from /dev/urandom: incompressible, never deduplicated; through a
#       file QEMU reads, removed after). Marks the dirty bitmaps of active checkpoints like a guest write would.
#   domain.sh remove NAME [--force]
#       Destroys and undefines NAME (--nvram --checkpoints-metadata, and --tpm where virsh has it;
#       otherwise /var/lib/libvirt/swtpm/UUID is removed by hand), then deletes its images, scratch files
#       (/var/lib/libvirt/images/NAME-*.scratch), backup sockets (/tmp/NAME-*.sock), swtpm log and the chain
#       position a restore in place left (/var/lib/libvirt/images/.virtbackup/NAME.{chain.json,xml,committing}).
#       Succeeds when NAME does not exist.
#   domain.sh layout [--disk-size SIZE] [--index I]
#       Prints the --fill layout of disk I (0 for vda) one run per line, offsets and lengths in bytes:
#         data OFFSET LENGTH PATTERN    (every byte is PATTERN, 0x<run><I+1>, e.g. 0x11, 0x21 for vda)
#         zero OFFSET LENGTH            (written, then zeroed with write -z: reads as zeros)
#       Everything else is a hole (never written).
#
# create, write and remove refuse names that do not start with vbt- or demo- unless --force is given.
# Run as root with the daemons up (start-daemons.sh).
set -euo pipefail

URI=qemu:///system
IMAGES=/var/lib/libvirt/images
OVMF_CODE=/usr/share/OVMF/OVMF_CODE_4M.fd
OVMF_VARS=/usr/share/OVMF/OVMF_VARS_4M.fd
MIB=$((1024 * 1024))
DEVICE_LETTERS=abcdefgh # vda..vdh: --disks is 1..8
LAB=$(dirname "${BASH_SOURCE[0]}")

die() {
  echo "domain.sh: $*" >&2
  exit 1
}

virsh_() { virsh -q -c "$URI" "$@"; }

check_name() {
  local name=$1 force=$2
  [[ $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || die "invalid domain name '$name'"
  if [[ $force != yes && $name != vbt-* && $name != demo-* ]]; then
    die "refusing '$name': lab domains start with vbt- or demo- (use --force to override)"
  fi
}

domain_exists() { virsh_ domuuid "$1" >/dev/null 2>&1; }

to_bytes() {
  local bytes
  bytes=$(numfmt --from=iec "${1%B}" 2>/dev/null) || die "invalid size '$1'"
  echo "$bytes"
}

# layout SIZE_BYTES INDEX: the --fill runs of one disk (see the header).
layout() {
  local size=$1 index=$2 tag=$(($2 + 1))
  ((size >= 32 * MIB)) || die "disk size must be at least 32M for the fill layout"
  printf 'data %d %d 0x1%x\n' 0 $((1 * MIB)) "$tag"
  printf 'zero %d %d\n' $((2 * MIB)) $((1 * MIB))
  printf 'data %d %d 0x2%x\n' $((4 * MIB)) 65536 "$tag"
  printf 'data %d %d 0x3%x\n' $((8 * MIB)) $((4 * MIB)) "$tag"
  printf 'data %d %d 0x4%x\n' $((size - MIB)) $((1 * MIB)) "$tag"
}

fill_image() {
  local image=$1 size=$2 index=$3 kind offset length pattern runs
  local -a commands=()
  runs=$(layout "$size" "$index")
  while read -r kind offset length pattern; do
    if [[ $kind == data ]]; then
      commands+=(-c "write -q -P $pattern $offset $length")
    else
      commands+=(-c "write -q -P 0xee $offset $length" -c "write -q -z $offset $length")
    fi
  done <<<"$runs"
  qemu-io -f qcow2 "${commands[@]}" "$image" >/dev/null
}

# domain_xml NAME DISKS [KERNEL INITRD [EXTRA_CMDLINE]]: with a kernel, the guest-agent VM of --agent.
domain_xml() {
  local name=$1 disks=$2 kernel=${3:-} initrd=${4:-} extra=${5:-} i dev memory=128 boot=""
  if [[ -n $kernel ]]; then
    memory=256
    boot="
    <kernel>$kernel</kernel>
    <initrd>$initrd</initrd>
    <cmdline>console=ttyS0 quiet panic=-1$extra</cmdline>"
  fi
  cat <<XML
<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>$name</name>
  <memory unit='MiB'>$memory</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <loader readonly='yes' type='pflash'>$OVMF_CODE</loader>
    <nvram template='$OVMF_VARS'/>$boot
  </os>
  <features><acpi/></features>
  <devices>
XML
  for ((i = 0; i < disks; i++)); do
    dev=vd${DEVICE_LETTERS:i:1}
    cat <<XML
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$IMAGES/$name-$dev.qcow2'/>
      <target dev='$dev' bus='virtio'/>
    </disk>
XML
  done
  if [[ -n $kernel ]]; then
    cat <<XML
    <serial type='file'><source path='$IMAGES/$name-console.log'/><target port='0'/></serial>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
XML
  fi
  cat <<XML
    <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>
  </devices>
  <qemu:override>
XML
  for ((i = 0; i < disks; i++)); do
    cat <<XML
    <qemu:device alias='virtio-disk$i'><qemu:frontend>
      <qemu:property name='share-rw' type='bool' value='true'/>
    </qemu:frontend></qemu:device>
XML
  done
  cat <<XML
  </qemu:override>
</domain>
XML
}

cmd_create() {
  local name=${1:-} disks=1 size=256M fill=no force=no agent=no agent_timeout=300 oracle=
  [[ -n $name ]] || die "usage: domain.sh create NAME [--disks N] [--disk-size SIZE] [--fill] [--agent [--agent-timeout S]] [--force]"
  shift
  while (($#)); do
    case $1 in
      --disks) disks=${2:?--disks needs a value}; shift 2 ;;
      --disk-size) size=${2:?--disk-size needs a value}; shift 2 ;;
      --fill) fill=yes; shift ;;
      --agent) agent=yes; shift ;;
      --oracle) agent=yes; oracle=" vboracle=/dev/vdb"; shift ;;
      --agent-timeout) agent_timeout=${2:?--agent-timeout needs a value}; shift 2 ;;
      --force) force=yes; shift ;;
      *) die "create: unknown option '$1'" ;;
    esac
  done
  check_name "$name" "$force"
  [[ $disks =~ ^[1-8]$ ]] || die "--disks must be 1..8"
  local bytes
  bytes=$(to_bytes "$size")
  ((bytes % 512 == 0)) || die "disk size must be a multiple of 512"
  if [[ $fill == yes ]] && ((bytes < 32 * MIB)); then
    die "--fill needs disks of at least 32M"
  fi
  [[ $agent == no || $fill == no ]] || die "--agent and --fill exclude each other"
  [[ $agent_timeout =~ ^[0-9]+$ ]] || die "--agent-timeout must be seconds"
  [[ -z $oracle ]] || ((disks >= 2)) || die "--oracle needs --disks 2 or more (the oracle writes vdb)"
  if domain_exists "$name"; then
    die "domain '$name' already exists; remove it first"
  fi
  local boot=()
  if [[ $agent == yes ]]; then
    mapfile -t boot < <(bash "$LAB/agent-guest.sh" ${oracle:+--oracle})
    ((${#boot[@]} == 2)) || die "agent-guest.sh did not print a kernel and an initramfs"
    [[ -z $oracle ]] || boot+=("$oracle")
  fi

  # From here on, a failure removes whatever was made.
  trap 'echo "domain.sh: create $name failed; cleaning up" >&2; cmd_remove "$name" --force >/dev/null 2>&1 || true' ERR
  mkdir -p "$IMAGES"
  local i dev image xml
  for ((i = 0; i < disks; i++)); do
    dev=vd${DEVICE_LETTERS:i:1}
    image=$IMAGES/$name-$dev.qcow2
    if [[ -e $image ]]; then
      die "$image already exists; remove it first"
    fi
    if [[ $agent == yes && $i == 0 ]]; then
      ext4_image "$image" "$bytes"
    else
      qemu-img create -q -f qcow2 "$image" "$bytes"
    fi
    if [[ $fill == yes ]]; then
      fill_image "$image" "$bytes" "$i"
    fi
  done
  xml=$(mktemp)
  domain_xml "$name" "$disks" "${boot[@]}" >"$xml"
  virsh_ define "$xml" >/dev/null
  rm -f "$xml"
  virsh_ start "$name" >/dev/null
  if [[ $agent == yes ]]; then
    wait_for_agent "$name" "$agent_timeout"
  fi
  trap - ERR
  virsh_ domuuid "$name"
}

# ext4_image IMAGE BYTES: a qcow2 whose whole disk is an ext4 file system (no partition table), every
# inode table and the journal initialized now, so the guest's kernel has no lazy initialization to write.
ext4_image() {
  local image=$1 bytes=$2 raw
  raw=$(mktemp "$IMAGES/.ext4-XXXXXX.raw")
  truncate -s "$bytes" "$raw"
  mkfs.ext4 -q -F -L vbt-agent -E lazy_itable_init=0,lazy_journal_init=0 "$raw"
  qemu-img convert -q -f raw -O qcow2 "$raw" "$image"
  rm -f "$raw"
}

# wait_for_agent NAME TIMEOUT: until the guest agent answers guest-ping; dies with the console's tail.
wait_for_agent() {
  local name=$1 timeout=$2 start=$SECONDS
  until virsh_ qemu-agent-command "$name" --timeout 2 '{"execute":"guest-ping"}' >/dev/null 2>&1; do
    if ((SECONDS - start >= timeout)); then
      echo "domain.sh: the guest agent of $name did not answer within ${timeout}s; console:" >&2
      tail -n 20 "$IMAGES/$name-console.log" >&2 2>/dev/null || true
      return 1 # not die: the ERR trap of create removes the domain
    fi
    sleep 0.5
  done
  echo "domain.sh: the guest agent of $name answers $((SECONDS - start)) s after start" >&2
}

# The libvirt alias (virtio-disk0) of target DEV in the live XML of NAME. Both lookups read their input to the end
# (no awk `exit`): a reader that quits early gives virsh SIGPIPE, and under pipefail `write` then died with 141.
disk_alias() {
  virsh_ dumpxml "$1" | awk -v dev="$2" '
    /<disk / { in_disk = 1; target = ""; alias = "" }
    in_disk && /<target / { if (match($0, /dev=.[^"\x27]*/)) target = substr($0, RSTART + 5, RLENGTH - 5) }
    in_disk && /<alias / { if (match($0, /name=.[^"\x27]*/)) alias = substr($0, RSTART + 6, RLENGTH - 6) }
    /<\/disk>/ { if (in_disk && target == dev && !found) { print alias; found = 1 } in_disk = 0 }'
}

# The top block node attached to the device with ALIAS, from HMP `info block`.
node_of_alias() {
  virsh_ qemu-monitor-command "$1" --hmp 'info block' | awk -v alias="$2" '
    /^[^ \t].*: / { node = $1; sub(/:$/, "", node) }
    /Attached to:/ && index($0, "/" alias "/") && !found { print node; found = 1 }'
}

cmd_write() {
  (($# == 5)) || die "usage: domain.sh write NAME NODE_OR_DISK OFFSET LENGTH PATTERN"
  local name=$1 target=$2 offset=$3 length=$4 pattern=$5 node alias command out
  check_name "$name" yes
  if [[ $target =~ ^[shv]d[a-z]+$ ]]; then
    alias=$(disk_alias "$name" "$target")
    [[ -n $alias ]] || die "no disk $target in running domain $name"
    node=$(node_of_alias "$name" "$alias")
    [[ -n $node ]] || die "no block node attached to $alias ($target) in $name"
  else
    node=$target
  fi
  case $pattern in
    zero) command="write -z $offset $length" ;;
    0x[0-9a-fA-F] | 0x[0-9a-fA-F][0-9a-fA-F]) command="write -P $pattern $offset $length" ;;
    random)
      # QEMU (not this script) opens the file: it lies next to the images, readable by the qemu user.
      random_file=$(mktemp "$IMAGES/$name-random.XXXXXX") # global: the EXIT trap runs after this function returned
      trap 'rm -f "$random_file"' EXIT
      chmod 0644 "$random_file"
      head -c "$(to_bytes "$length")" /dev/urandom >"$random_file"
      command="write -s $random_file $offset $length"
      ;;
    *) die "PATTERN must be a byte like 0x77, 'zero' or 'random'" ;;
  esac
  # HMP answers errors as text with success, so the answer itself is checked.
  for command in "$command" flush; do
    out=$(virsh_ qemu-monitor-command "$name" --hmp "qemu-io $node \"$command\"")
    if [[ $out == *rror* || $out == *failed* || $out == *"not found"* ]]; then
      die "qemu-io '$command' on $node of $name: $out"
    fi
  done
  echo "$node"
}

cmd_remove() {
  local name=${1:-} force=no
  [[ -n $name ]] || die "usage: domain.sh remove NAME [--force]"
  if [[ ${2:-} == --force ]]; then
    force=yes
  fi
  check_name "$name" "$force"
  local uuid="" flags=(--nvram --checkpoints-metadata --snapshots-metadata --managed-save)
  if domain_exists "$name"; then
    uuid=$(virsh_ domuuid "$name")
    if [[ $(virsh_ domstate "$name") != "shut off" ]]; then
      virsh_ destroy "$name" >/dev/null 2>&1 || true # it may have stopped on its own meanwhile
    fi
    if virsh_ undefine --help | grep -q -- '--tpm'; then
      flags+=(--tpm)
    fi
    virsh_ undefine "$name" "${flags[@]}" >/dev/null
  fi
  if [[ -n $uuid && -d /var/lib/libvirt/swtpm/$uuid ]]; then
    rm -rf "/var/lib/libvirt/swtpm/${uuid:?}"
  fi
  rm -f "$IMAGES/$name"-vd[a-z].qcow2 "$IMAGES/$name"-*.scratch "$IMAGES/$name-console.log" /tmp/"$name"-*.sock \
    "/var/lib/libvirt/qemu/nvram/${name}_VARS.fd" "/var/log/swtpm/libvirt/qemu/$name-swtpm.log" \
    "$IMAGES/.virtbackup/$name".{chain.json,xml,committing}
  echo "removed $name"
}

cmd_layout() {
  local size=256M index=0
  while (($#)); do
    case $1 in
      --disk-size) size=${2:?--disk-size needs a value}; shift 2 ;;
      --index) index=${2:?--index needs a value}; shift 2 ;;
      *) die "layout: unknown option '$1'" ;;
    esac
  done
  [[ $index =~ ^[0-7]$ ]] || die "--index must be 0..7"
  layout "$(to_bytes "$size")" "$index"
}

[[ $(id -u) -eq 0 ]] || die "must run as root"
command=${1:-}
shift || true
case $command in
  create) cmd_create "$@" ;;
  write) cmd_write "$@" ;;
  remove) cmd_remove "$@" ;;
  layout) cmd_layout "$@" ;;
  *) die "usage: domain.sh create|write|remove|layout ... (see the header of this script)" ;;
esac
