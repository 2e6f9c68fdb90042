#!/usr/bin/env bash
# rss.sh: issue 14's "memory flat in extent count" in real processes: peak RSS (GNU time's maximum resident set)
# of `virtbackup backup --level copy` of a shut-off lab VM whose disk holds 50,000 and then 500,000 scattered
# 4 KiB extents, and of `virtbackup restore` of that stream into qcow2.
#
# Usage: integration/bench/scale/rss.sh [RUNS]     (default 3; every figure is a median of RUNS runs)
#   RSS_SIZE=8G RSS_COUNTS="50000 500000" RSS_RESTORE=1   the disk, its extent counts, 0: no restore
#   RSS_SAME_DATA=1   every image holds the same data: extents of 4 KiB x (largest count / count), so 50,000 extents
#                     of 40 KiB against 500,000 of 4 KiB (0: 4 KiB extents in every image, data grows with the count)
#   RSS_SOURCE=DIR   the source tree whose CLI is measured (default this one; e.g. `git archive main` unpacked)
#
# The images are built once (make-fragmented.py with 4 KiB extents, then qemu-img convert to 4 KiB clusters: with
# qcow2's default 64 KiB, block status would report whole clusters) and cached in
# /var/lib/virtbackup-lab/bench-scale; one lab VM (vbt-rss-<pid>, TCG, firmware only, never started after it is
# created) gets each image in turn. The VM and the work directory are removed at exit. Not part of the test suite.
set -euo pipefail

runs=${1:-3}
size=${RSS_SIZE:-8G}
counts=${RSS_COUNTS:-50000 500000}
restore=${RSS_RESTORE:-1}
same_data=${RSS_SAME_DATA:-1}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
lab=$root/integration/lab
die() { echo "rss.sh: $*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
for tool in dotnet qemu-img /usr/bin/time; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done
bash "$lab/start-daemons.sh" >/dev/null

bytes=$(numfmt --from=iec "$size")
cache=/var/lib/virtbackup-lab/bench-scale
mkdir -p "$cache"
largest=$(tr ' ' '\n' <<<"$counts" | sort -n | tail -1)
# image_of COUNT: the cached image for COUNT extents
image_of() {
  local kib=4
  if [[ $same_data == 1 ]]; then
    kib=$((4 * largest / $1))
  fi
  echo "$cache/frag-$size-$1-${kib}k.qcow2"
}
for count in $counts; do
  image=$(image_of "$count")
  if [[ ! -f $image ]]; then
    echo "rss.sh: building $image (once)" >&2
    kib=${image##*-}
    /usr/bin/python3 "$here/make-fragmented.py" "$cache/building-$$.raw" "$bytes" "$count" "${kib%k.qcow2}" >/dev/null
    qemu-img convert -f raw -O qcow2 -o cluster_size=4096 "$cache/building-$$.raw" "$cache/building-$$.qcow2"
    rm -f "$cache/building-$$.raw"
    mv "$cache/building-$$.qcow2" "$image"
  fi
done

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
name=vbt-rss-$$
work=$(mktemp -d "/tmp/$name.XXXXXX")
chmod 755 "$work" # the VM's disk is not here, but qemu-nbd of a shut-off backup may look
trap 'bash "$lab/domain.sh" remove "$name" >/dev/null 2>&1 || echo "rss.sh: could not remove $name" >&2; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
cli=${RSS_SOURCE:-$root}/src/VirtBackup.Cli
dotnet publish "$cli" -c Release -r linux-x64 -o "$work/cli" -nologo -clp:ErrorsOnly >/dev/null
virtbackup=$work/cli/virtbackup
bash "$lab/domain.sh" create "$name" --disk-size "$size" >/dev/null
virsh -q destroy "$name" >/dev/null

# measured WHAT COUNT CMD...: runs CMD under GNU time, appending "peak-RSS-KiB wall-seconds" to $work/WHAT.COUNT.
measured() {
  local file=$work/$1.$2
  shift 2
  /usr/bin/time -a -o "$file" -f '%M %e' "$@"
}
# report FILE: the runs' peak RSS in MiB, their median, and the walls.
report() {
  sort -n "$1" | awk '{ rss[NR] = int($1 / 1024); list = list rss[NR] " "; walls = walls $2 " " }
    END { printf "peak RSS %sMiB (median %d), wall %ss\n", list, rss[int((NR + 1) / 2)], walls }'
}

for count in $counts; do
  cp --sparse=always "$(image_of "$count")" "/var/lib/libvirt/images/$name-vda.qcow2"
  extents=$(qemu-img map --output=json "/var/lib/libvirt/images/$name-vda.qcow2" | grep -c '"data": true')
  for ((run = 1; run <= runs; run++)); do
    measured backup "$count" "$virtbackup" backup --domain "$name" --level copy --log-level warning >"$work/stream.tar"
    if [[ $restore == 1 ]]; then
      rm -rf "$work/restored"
      measured restore "$count" "$virtbackup" restore --target-root "$work/restored" --log-level warning <"$work/stream.tar"
    fi
  done
  stream=$(stat -c %s "$work/stream.tar")
  echo "$count extents requested ($(basename "$(image_of "$count")")), $extents data extents mapped, stream $((stream / 1048576)) MiB"
  for what in backup restore; do
    if [[ -f $work/$what.$count ]]; then
      echo "  $what: $(report "$work/$what.$count")"
    fi
  done
  rm -rf "$work/restored" "$work/stream.tar"
done
