#!/usr/bin/env bash
# scale.sh: issue 14's benchmark. A big, fragmented disk (default: 1 TiB holding 60,000 scattered 64 KiB extents,
# 3.75 GiB of data, half random, half text) and an incremental after scattered 4 KiB writes, ours against
# virtnbdbackup / virtnbdrestore and against nbdcopy from the same kind of export.
#
# Usage: integration/bench/scale/scale.sh [RUNS]     (default 3; every figure is a median of RUNS runs)
#   SCALE_SIZE=1T SCALE_EXTENTS=60000 SCALE_WRITES=5000   the disk, its extents, the writes before the incremental
#
# The fragmented image is built once (make-fragmented.py, then qemu-img convert) and cached in
# /var/lib/virtbackup-lab/bench-scale; each run copies it into a lab VM (vbt-scale-<pid>, TCG, firmware only).
# Per run, in this order: ours and the peer's full copy to a pipe (wall, peak RSS, CPU, stream size), nbdcopy (its
# default and -C 1) and nbdinfo --map from a pull-mode export of the same disk (the floor), ours and the peer's
# restore into qcow2, then for each tool alone (virtnbdbackup refuses checkpoints it did not make): a full,
# SCALE_WRITES scattered 4 KiB writes (write-scattered.py), the incremental (wall, size). The VM and the work
# directory are removed at exit. Needs the peers run.sh installs (run it once first). Not part of the test suite.
set -euo pipefail

runs=${1:-3}
size=${SCALE_SIZE:-1T}
extents=${SCALE_EXTENTS:-60000}
writes=${SCALE_WRITES:-5000}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
lab=$root/integration/lab
die() { echo "scale.sh: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
for tool in dotnet virtnbdbackup virtnbdrestore nbdcopy nbdinfo /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is missing: run integration/bench/run.sh once (it installs the peers)"
done
bash "$lab/start-daemons.sh" >/dev/null

bytes=$(numfmt --from=iec "$size")
cache=/var/lib/virtbackup-lab/bench-scale
image=$cache/frag-$size-$extents.qcow2
if [[ ! -f $image ]]; then
  echo "scale.sh: building $image (once)"
  mkdir -p "$cache"
  /usr/bin/python3 "$here/make-fragmented.py" "$cache/building.raw" "$bytes" "$extents" >/dev/null
  qemu-img convert -f raw -O qcow2 "$cache/building.raw" "$cache/building.qcow2"
  rm -f "$cache/building.raw"
  mv "$cache/building.qcow2" "$image"
fi
mapped=$(qemu-img map --output=json "$image" | grep -c '"data": true')

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
name=vbt-scale-$$
work=$(mktemp -d "/tmp/$name.XXXXXX")
chmod 755 "$work"
# shellcheck disable=SC2317 # run by the EXIT trap, which shellcheck does not follow
cleanup() {
  virsh -q domjobabort "$name" >/dev/null 2>&1 || true
  bash "$lab/domain.sh" remove "$name" >/dev/null 2>&1 || echo "scale.sh: could not remove $name" >&2
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

dotnet publish "$root/src/VirtBackup.Cli" -c Release -r linux-x64 -o "$work/virtbackup" -nologo -clp:ErrorsOnly >/dev/null
virtbackup=$work/virtbackup/virtbackup

echo "scale.sh: creating $name with the $size disk of $mapped data extents"
bash "$lab/domain.sh" create "$name" --disk-size "$size" >/dev/null
virsh -q destroy "$name" >/dev/null
cp --sparse=always "$image" "/var/lib/libvirt/images/$name-vda.qcow2"
virsh -q start "$name" >/dev/null
node=$(bash "$lab/domain.sh" write "$name" vda 0 4k 0x11) # the block node for write-scattered.py (one write at 0)

declare -A samples
# timed KEY CMD...: runs CMD under GNU time; records KEY.s (wall seconds) and KEY.rss (peak MiB). Redirections
# given after the call apply to CMD.
timed() {
  local key=$1 qemu_before qemu_after
  shift
  qemu_before=$(qemu_cpu)
  /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@"
  qemu_after=$(qemu_cpu)
  read -r seconds kib user sys <"$work/time"
  samples[$key.s]+="$seconds "
  samples[$key.rss]+="$((kib / 1024)) "
  samples[$key.cpu]+="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }') "
  samples[$key.qemucpu]+="$(awk -v a="$qemu_before" -v b="$qemu_after" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", (b - a) / hz }') "
}
# qemu_cpu: the VM's QEMU process's CPU time so far (user + system, in clock ticks): what serving the export cost.
qemu_cpu() { awk '{ print $14 + $15 }' "/proc/$(pgrep -f "qemu-system.*guest=$name," | head -1)/stat"; }
record() { samples[$1]+="$2 "; }
# phase_seconds LOG FROM TO: seconds between two "phase:" lines of a virtbackup debug log (HH:MM:SS.mmm stamps).
phase_seconds() {
  awk -v from="phase: $2" -v to="phase: $3" '
    function t(s, p) { split(s, p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] }
    index($0, from) { a = t($1) } index($0, to) { b = t($1) } END { printf "%.2f", b - a }' "$1"
}
median() { tr ' ' '\n' <<<"${samples[$1]}" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
size_of() { du -sb "$@" | awk '{ s += $1 } END { print s }'; }
delete_checkpoints() {
  local checkpoint
  for checkpoint in $(virsh -q checkpoint-list "$name" --name --topological | tac); do
    virsh -q checkpoint-delete "$name" "$checkpoint" >/dev/null
  done
}

for ((run = 1; run <= runs; run++)); do
  echo "scale.sh: $(date -u +%H:%M:%S) run $run of $runs"
  timed full.ours "$virtbackup" backup --domain "$name" --level copy --log-level debug >"$work/ours.tar" 2>"$work/ours.log"
  # Format 3: the read starts once the first 16 GiB map piece is mapped; the rest is mapped while it reads.
  record full.ours.map "$(phase_seconds "$work/ours.log" 'pause window' 'disks connected and mapped')"
  record full.ours.mapall "$(phase_seconds "$work/ours.log" 'pause window' 'disk vda mapped')"
  record full.ours.bytes "$(size_of "$work/ours.tar")"
  mkdir -p "$work/peer-cwd"
  timed full.peer env -C "$work/peer-cwd" virtnbdbackup -d "$name" -l copy -z -o - -n >"$work/peer.zip" 2>"$work/peer.log"
  record full.peer.bytes "$(size_of "$work/peer.zip")"

  # The floor: nbdcopy and nbdinfo --map from libvirt's pull-mode export of the same disk.
  cat >"$work/pull.xml" <<EOF
<domainbackup mode='pull'><server transport='unix' socket='/tmp/$name-floor.sock'/>
<disks><disk name='vda' backup='yes' type='file'><scratch file='/var/lib/libvirt/images/$name-vda.scratch'/></disk></disks></domainbackup>
EOF
  virsh -q backup-begin "$name" "$work/pull.xml" >/dev/null
  timed floor.copy nbdcopy "nbd+unix:///vda?socket=/tmp/$name-floor.sock" null:
  # nbdcopy's default (4 connections, 64 requests of 256 KiB in flight each) against one connection, which is far
  # faster on this lab's two cores: the faster of the two is the floor a backup is held to.
  timed floor.copy1 nbdcopy -C 1 "nbd+unix:///vda?socket=/tmp/$name-floor.sock" null:
  timed floor.map nbdinfo --map "nbd+unix:///vda?socket=/tmp/$name-floor.sock" >/dev/null
  virsh -q domjobabort "$name" >/dev/null

  rm -rf "$work/restore-ours" "$work/restore-peer" && mkdir -p "$work/restore-ours" "$work/restore-peer"
  timed restore.ours "$virtbackup" restore --target-root "$work/restore-ours" --log-level warning <"$work/ours.tar"
  if [[ ! -d $work/peer-backup ]]; then
    virtnbdbackup -d "$name" -l copy -o "$work/peer-backup" -n >/dev/null 2>&1
  fi
  timed restore.peer virtnbdrestore -i "$work/peer-backup" -o "$work/restore-peer" -n >/dev/null 2>&1

  # Incrementals after the same number of scattered writes, each tool on a chain of its own.
  delete_checkpoints
  rm -rf "$work/peer-chain"
  virtnbdbackup -d "$name" -l full -o "$work/peer-chain" >/dev/null 2>&1
  before=$(size_of "$work/peer-chain")
  /usr/bin/python3 "$here/write-scattered.py" "$name" "$node" "$bytes" "$writes" "$run"
  timed inc.peer virtnbdbackup -d "$name" -l inc -o "$work/peer-chain" >/dev/null 2>&1
  record inc.peer.bytes "$(($(size_of "$work/peer-chain") - before))"
  delete_checkpoints
  "$virtbackup" backup --domain "$name" --level full --log-level warning >"$work/ours-full.tar"
  /usr/bin/python3 "$here/write-scattered.py" "$name" "$node" "$bytes" "$writes" "$((run + 1000))"
  timed inc.ours "$virtbackup" backup --domain "$name" --level inc --log-level warning >"$work/ours-inc.tar"
  record inc.ours.bytes "$(size_of "$work/ours-inc.tar")"
  delete_checkpoints
done

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
row() { # row LABEL OURS PEER RATIO TARGET
  printf '| %s | %s | %s | %s | %s |\n' "$@"
}
echo
echo "| $size disk, $mapped extents, medians of $runs | ours | peer | ratio | target |"
echo "|---|---|---|---|---|"
row "full backup to a pipe, wall" "$(median full.ours.s) s" "virtnbdbackup -l copy -z: $(median full.peer.s) s" "$(ratio "$(median full.ours.s)" "$(median full.peer.s)")" "<= 0.8"
floor_key=floor.copy floor_tool=nbdcopy
if awk -v a="$(median floor.copy1.s)" -v b="$(median floor.copy.s)" 'BEGIN { exit !(a < b) }'; then
  floor_key=floor.copy1 floor_tool="nbdcopy -C 1"
fi
floor=$(median $floor_key.s)
row "  against nbdcopy to null: (floor, the faster of nbdcopy and nbdcopy -C 1)" "$(median full.ours.s) s" "$floor_tool: $floor s (nbdcopy $(median floor.copy.s) s, -C 1 $(median floor.copy1.s) s)" "$(ratio "$(median full.ours.s)" "$floor")" "<= 1.1"
row "  CPU seconds, ours + QEMU's" "$(median full.ours.cpu) + $(median full.ours.qemucpu) s" "$floor_tool: $(median $floor_key.cpu) + $(median $floor_key.qemucpu) s" "" "info ($(nproc) cores)"
row "  extent discovery the read waits for (the first 16 GiB)" "$(median full.ours.map) s" "nbdinfo --map: $(median floor.map.s) s" "$(ratio "$(median full.ours.map)" "$(median floor.map.s)")" "<= 1.0"
row "  whole-disk discovery, overlapped with the read (at most 4 pieces ahead of it)" "$(median full.ours.mapall) s" "" "" "info"
row "  stream size" "$(mib "$(median full.ours.bytes)")" "$(mib "$(median full.peer.bytes)")" "$(ratio "$(median full.ours.bytes)" "$(median full.peer.bytes)")" "<= 0.8"
row "  stream bytes per data extent" "$(awk -v s="$(median full.ours.bytes)" -v e="$mapped" 'BEGIN { printf "%.0f", s / e }') B" "$(awk -v s="$(median full.peer.bytes)" -v e="$mapped" 'BEGIN { printf "%.0f", s / e }') B" "" "info"
row "  peak RSS" "$(median full.ours.rss) MiB" "$(median full.peer.rss) MiB" "" "<= 200 MiB"
row "restore into qcow2, wall" "$(median restore.ours.s) s" "virtnbdrestore: $(median restore.peer.s) s" "$(ratio "$(median restore.ours.s)" "$(median restore.peer.s)")" "<= 0.5"
row "  peak RSS" "$(median restore.ours.rss) MiB" "" "" "<= 200 MiB"
row "incremental after $writes scattered 4 KiB writes, wall" "$(median inc.ours.s) s" "virtnbdbackup -l inc: $(median inc.peer.s) s" "$(ratio "$(median inc.ours.s)" "$(median inc.peer.s)")" "<= 0.5"
row "  incremental size" "$(mib "$(median inc.ours.bytes)")" "$(mib "$(median inc.peer.bytes)")" "$(ratio "$(median inc.ours.bytes)" "$(median inc.peer.bytes)")" "<= 0.8"
echo
for key in $(printf '%s\n' "${!samples[@]}" | sort); do echo "- $key: ${samples[$key]}"; done
echo "scale.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
