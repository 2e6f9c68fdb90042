#!/usr/bin/env bash
# run.sh: how much a restic repository grows when a VM is backed up again after small changes.
#
# Usage (as root, libvirtd up: integration/lab/start-daemons.sh): integration/bench/dedup/run.sh [--keep]
#
# A lab VM (integration/lab/domain.sh: UEFI, NVRAM, TPM 2.0) gets a 4 GiB qcow2 disk holding 768 MiB
# of data written before it starts: 24 extents of 32 MiB spread over the disk, random and text
# (source files and documentation from /usr) in turn. Then, per producer, into a fresh local
# restic repository (`restic backup --stdin --stdin-filename NAME.tar`, restic's default repository
# version and compression):
#   1. a full backup;
#   2. no change, a second full (what every backup costs: the manifest and trailer change);
#   3. 4 random 4 KiB writes (random data at random 4 KiB-aligned offsets: two in random-data extents,
#      two in text extents), a third full;
#   4. one 16 MiB random write (random data at a random offset in a random-data extent), a fourth full;
# and reports the repository's growth (`du -sb` of the repository directory) at each step.
# Producers: virtbackup --level full --compression none; virtbackup --level full --compression zstd;
# `virtnbdbackup -l copy -o -` (its zip stream; Debian package virtnbdbackup); and "borg": virtbackup
# --compression none into a fresh borg repository instead (`borg create --compression zstd,3
# --stdin-name NAME.tar ::ARCHIVE -`, unencrypted), whose data_added column is borg's
# deduplicated_size (after borg's compression, unlike restic's data_added).
# And "synthetic" (issue 12): the synthetic full. Fresh restic and borg repositories each store the same
# three stream files (kept on disk, --compression none): 1. a full; 2. after one 16 MiB random write (as
# in step 4), an incremental; 3. `virtbackup consolidate FULL INC`, the synthetic full.
# Targets: issue 5, for --compression none: step 3 adds at most 8 MiB, step 4 at most 24 MiB; issue 12,
# in restic and in borg: the synthetic full adds at most 1.5x what the incremental added (repository
# growth). The exit code is 1 when one is missed.
#
# Environment: VIRTBACKUP (default: build src/VirtBackup.Cli in Release into the work directory),
# VBT_DEDUP_WORK (default /var/tmp/vbt-dedup-PID; removed at the end unless --keep),
# VBT_DEDUP_MODES (default "none zstd virtnbdbackup borg synthetic"), VBT_DEDUP_SEED (offsets; default 1),
# VBT_DEDUP_WRITES_IN (which extents the writes go to: mixed, the default, as above; random, the
# worst case: restic cannot compress the chunks they change; text; any: wherever the seed says).
# Prints the results as a Markdown table on stdout (progress on stderr); the VM is always removed.
# Needs: restic, virtnbdbackup, borg, qemu-img, jq (installed with apt-get when missing), dotnet.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
WORK=${VBT_DEDUP_WORK:-/var/tmp/vbt-dedup-$$}
MODES=${VBT_DEDUP_MODES:-none zstd virtnbdbackup borg synthetic}
RANDOM=${VBT_DEDUP_SEED:-1}
KEEP=no
[[ ${1:-} == --keep ]] && KEEP=yes
NAME=vbt-dedup-$$
IMAGES=/var/lib/libvirt/images
IMAGE=$IMAGES/$NAME-vda.qcow2
WRITE_FILE=$IMAGES/$NAME-write.bin
MIB=$((1024 * 1024))
EXTENTS=24 EXTENT_MIB=32 STRIDE_MIB=168 # 24 x 32 MiB = 768 MiB, the last ends at 3896 MiB of 4096
URI=qemu:///system

log() { echo "dedup: $*" >&2; }
die() { log "$*"; exit 2; }
virsh_() { virsh -q -c "$URI" "$@"; }

[[ $(id -u) -eq 0 ]] || die "run as root"
missing=()
for tool in restic virtnbdbackup borg qemu-img jq; do command -v "$tool" >/dev/null || missing+=("$tool"); done
missing=("${missing[@]/#borg/borgbackup}")
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi

# shellcheck disable=SC2317 # run by the EXIT trap, which shellcheck does not follow
cleanup() {
  local try domains
  for try in 1 2 3 4 5; do # libvirtd may be restarting (other users of the lab)
    bash "$ROOT/integration/lab/domain.sh" remove "$NAME" >/dev/null 2>&1
    # domain.sh takes an unreachable libvirtd for "no such domain": check that libvirt answers without it.
    domains=$(virsh_ list --all --name 2>/dev/null) && ! grep -qx "$NAME" <<< "$domains" && break
    [[ $try == 5 ]] && log "could not remove $NAME: run integration/lab/domain.sh remove $NAME"
    sleep 3
  done
  rm -f "$WRITE_FILE"
  if [[ $KEEP == yes ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$WORK"

if [[ -z ${VIRTBACKUP:-} ]]; then
  log "building virtbackup (Release)"
  dotnet build "$ROOT/src/VirtBackup.Cli" -c Release -o "$WORK/bin" -v quiet -nologo >&2
  VIRTBACKUP=$WORK/bin/virtbackup
fi

# 1. The disk: 768 MiB of random and text data in a 4 GiB image, every other extent of each kind.
log "writing 768 MiB of data into a 4 GiB image"
head -c $((EXTENTS * EXTENT_MIB * MIB / 2)) /dev/urandom > "$WORK/random.bin"
(
  set +o pipefail
  files=$(find /usr/include /usr/lib/python3 /usr/lib/python3.11 /usr/share/perl /usr/share/doc /usr/share/dotnet \
    -type f \( -name '*.h' -o -name '*.py' -o -name '*.pm' -o -name '*.txt' -o -name '*.xml' -o -name '*.html' \
    -o -name '*.md' -o -name '*.json' \) 2>/dev/null | LC_ALL=C sort)
  # Not quite 384 MiB of text on a Debian 12 with the .NET SDK: the rest repeats it.
  while :; do xargs -d '\n' cat <<< "$files"; done 2>/dev/null | head -c $((EXTENTS * EXTENT_MIB * MIB / 2)) > "$WORK/text.bin"
)
truncate -s 4G "$WORK/disk.raw"
for ((i = 0; i < EXTENTS; i++)); do
  source=$WORK/random.bin
  ((i % 2)) && source=$WORK/text.bin
  # shellcheck disable=SC2017 # extents i and i+1 (random, text) take the same piece i/2 of their file: rounding down is the point
  dd if="$source" of="$WORK/disk.raw" bs=1M skip=$((i / 2 * EXTENT_MIB)) count=$EXTENT_MIB \
    seek=$((i * STRIDE_MIB)) conv=notrunc status=none
done
rm -f "$WORK/random.bin" "$WORK/text.bin"

# 2. The VM, with that disk (domain.sh makes and starts it with an empty one; swapped while it is off).
log "creating VM $NAME"
bash "$ROOT/integration/lab/domain.sh" create "$NAME" --disk-size 4G >/dev/null
virsh_ destroy "$NAME" >/dev/null
qemu-img convert -f raw -O qcow2 "$WORK/disk.raw" "$WORK/disk.qcow2"
rm -f "$WORK/disk.raw"
mv -f "$WORK/disk.qcow2" "$IMAGE"
virsh_ start "$NAME" >/dev/null
allocated=$(qemu-img map -U --output=json "$IMAGE" | jq '[.[] | select(.data) | .length] | add')
log "allocated: $((allocated / MIB)) MiB of $(( $(qemu-img info -U --output=json "$IMAGE" | jq '."virtual-size"') / MIB)) MiB"
node=$(virsh_ qemu-monitor-command "$NAME" --hmp 'info block' | awk -v image="$IMAGE" 'index($0, image) { sub(/:.*/, ""); print; exit }')
[[ -n $node ]] || die "no block node for $IMAGE"

# random_write LENGTH KIND: random data at a random 4 KiB-aligned offset inside one data extent, like a
# guest write; KIND random (even extents) or text (odd ones), unless VBT_DEDUP_WRITES_IN says otherwise.
random_write() {
  local length=$1 kind=$2 extent offset out
  case ${VBT_DEDUP_WRITES_IN:-mixed} in
    random | text) kind=$VBT_DEDUP_WRITES_IN ;;
    any) kind=any ;;
  esac
  case $kind in
    random) extent=$((RANDOM % (EXTENTS / 2) * 2)) ;;
    text) extent=$((RANDOM % (EXTENTS / 2) * 2 + 1)) ;;
    *) extent=$((RANDOM % EXTENTS)) ;;
  esac
  offset=$(( ((RANDOM << 15 | RANDOM) % ((EXTENT_MIB * MIB - length) / 4096 + 1)) * 4096 ))
  offset=$((extent * STRIDE_MIB * MIB + offset))
  head -c "$length" /dev/urandom > "$WRITE_FILE"
  chmod 0644 "$WRITE_FILE"
  for command in "write -s $WRITE_FILE $offset $length" flush; do
    out=$(virsh_ qemu-monitor-command "$NAME" --hmp "qemu-io $node \"$command\"")
    [[ $out != *rror* && $out != *failed* ]] || die "qemu-io '$command': $out"
  done
  log "  wrote $length random bytes at $offset (extent $extent)"
}

produce() { # produce MODE: one backup stream on stdout
  case $1 in
    none | zstd | borg) "$VIRTBACKUP" backup --domain "$NAME" --level full --compression "${1/borg/none}" --state-dir "$WORK/state" ;;
    virtnbdbackup) (cd "$WORK/nbd" && virtnbdbackup -d "$NAME" -l copy -o - -n -S "$WORK/nbd") ;;
  esac
}

size_of() { du -sb "$1" | cut -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

declare -A result
verdict=0 members='' repo_version=''

# store_borg STEP: stdin into the borg repository as one archive; borg's --json stats, as restic's summary.
store_borg() {
  borg create --json --compression zstd,3 --stdin-name "$NAME.tar" "::step$1" - |
    jq -c '{message_type: "summary", total_bytes_processed: .archive.stats.original_size, data_added: .archive.stats.deduplicated_size}'
}

# store_file STEP HOST FILE LABEL SECONDS: FILE into the HOST (restic or borg) repository; records its growth
# as result[LABEL,STEP] (SECONDS: what making FILE took).
store_file() {
  local step=$1 host=$2 file=$3 label=$4 took=$5 repository before after
  repository=$RESTIC_REPOSITORY
  [[ $host == borg ]] && repository=$BORG_REPO
  before=$(size_of "$repository")
  if [[ $host == borg ]]; then
    store_borg "$step" < "$file" > "$WORK/store.json"
  else
    restic backup --stdin --stdin-filename "$NAME.tar" --json < "$file" > "$WORK/store.json"
  fi
  after=$(size_of "$repository")
  growth[$label,$step]=$((after - before))
  result[$label,$step]="$(mib $((after - before))) | $(mib "$(jq -r 'select(.message_type == "summary") | .data_added' "$WORK/store.json")") | $(mib "$(stat -c %s "$file")") | $took"
  log "synthetic: $label step $step: repository +$(mib $((after - before))) MiB"
}

# The synthetic full (issue 12): the same full, incremental and consolidate of the two, each a file, into
# fresh restic and borg repositories.
run_synthetic() {
  local dir=$WORK/synthetic step start took host
  rm -rf "$dir" && mkdir -p "$dir"
  export BORG_REPO=$dir/borg-repo BORG_BASE_DIR=$WORK/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
  export RESTIC_REPOSITORY=$dir/restic-repo RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$WORK/cache
  restic init -q >/dev/null
  borg init -e none
  for step in 1 2 3; do
    log "synthetic: stream $step"
    start=$(date +%s.%N)
    case $step in
      1) "$VIRTBACKUP" backup --domain "$NAME" --level full --compression none --state-dir "$WORK/state-synthetic" > "$dir/1.tar" ;;
      2)
        random_write $((16 * MIB)) random
        "$VIRTBACKUP" backup --domain "$NAME" --level inc --compression none --state-dir "$WORK/state-synthetic" > "$dir/2.tar"
        ;;
      3) "$VIRTBACKUP" consolidate "$dir/1.tar" "$dir/2.tar" > "$dir/3.tar" ;;
    esac
    took=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    for host in restic borg; do
      store_file "$step" "$host" "$dir/$step.tar" "synthetic-$host" "$took"
    done
  done
  for host in restic borg; do
    if ((growth[synthetic-$host,3] * 2 > growth[synthetic-$host,2] * 3)); then
      log "MISSED: in $host the synthetic full added more than 1.5x what the incremental added"
      verdict=1
    fi
  done
  repo_version=$(restic cat config --no-lock 2>/dev/null | jq .version)
  members+="${members:+, }synthetic $(tar -xOf "$dir/3.tar" virtbackup/manifest.json | jq -r '.compression.memberSize / 1048576') MiB"
  rm -f "$dir"/?.tar
}

declare -A growth
for mode in $MODES; do
  if [[ $mode == synthetic ]]; then
    run_synthetic
    continue
  fi
  export BORG_REPO=$WORK/borg-repo BORG_BASE_DIR=$WORK/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
  export RESTIC_REPOSITORY=$WORK/repo-$mode RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$WORK/cache
  rm -rf "$RESTIC_REPOSITORY" "$BORG_REPO" "$WORK/nbd" && mkdir -p "$WORK/nbd"
  repository=$RESTIC_REPOSITORY
  if [[ $mode == borg ]]; then repository=$BORG_REPO && borg init -e none; else restic init -q >/dev/null; fi
  before=$(size_of "$repository")
  for step in 1 2 3 4; do
    case $step in
      3) for kind in random text random text; do random_write 4096 "$kind"; done ;;
      4) random_write $((16 * MIB)) random ;;
    esac
    log "$mode: backup $step"
    start=$(date +%s.%N)
    if [[ $mode == borg ]]; then
      produce "$mode" 2>"$WORK/producer.log" | store_borg "$step" > "$WORK/restic.json"
    else
      produce "$mode" 2>"$WORK/producer.log" | restic backup --stdin --stdin-filename "$NAME.tar" --json > "$WORK/restic.json"
    fi
    codes=("${PIPESTATUS[@]}")
    [[ ${codes[0]} -eq 0 && ${codes[1]} -eq 0 ]] || { cat "$WORK/producer.log" >&2; die "$mode backup $step failed: ${codes[*]}"; }
    seconds=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
    after=$(size_of "$repository")
    stream=$(jq -r 'select(.message_type == "summary") | .total_bytes_processed' "$WORK/restic.json")
    added=$(jq -r 'select(.message_type == "summary") | .data_added' "$WORK/restic.json")
    result[$mode,$step]="$(mib $((after - before))) | $(mib "$added") | $(mib "$stream") | $seconds"
    log "$mode: backup $step: repository +$(mib $((after - before))) MiB (restic data_added $(mib "$added") MiB), stream $(mib "$stream") MiB, ${seconds}s"
    if [[ $mode == none && $step == 3 && $((after - before)) -gt $((8 * MIB)) ]]; then verdict=1; fi
    if [[ $mode == none && $step == 4 && $((after - before)) -gt $((24 * MIB)) ]]; then verdict=1; fi
    before=$after
  done
  [[ $mode == borg ]] && continue
  repo_version=$(restic cat config --no-lock 2>/dev/null | jq .version)
  if [[ $mode == none || $mode == zstd ]]; then
    manifest=$(set +o pipefail; restic dump --no-lock latest "/$NAME.tar" 2>/dev/null | head -c 65536 |
      tar -xO virtbackup/manifest.json 2>/dev/null || true)
    members+="${members:+, }$mode $(jq -r '.compression.memberSize / 1048576' <<< "$manifest") MiB"
  fi
done

echo "| producer | step | repository growth MiB | restic data_added MiB | stream MiB | seconds |"
echo "| --- | --- | ---: | ---: | ---: | ---: |"
for mode in $MODES; do
  if [[ $mode == synthetic ]]; then
    for host in restic borg; do
      label="virtbackup --compression none, consolidate, into $host"
      echo "| $label | 1. a full | ${result[synthetic-$host,1]} |"
      echo "| $label | 2. after a 16 MiB random write: an incremental | ${result[synthetic-$host,2]} |"
      echo "| $label | 3. consolidate of 1 and 2: the synthetic full | ${result[synthetic-$host,3]} |"
    done
    continue
  fi
  case $mode in
    none | zstd) label="virtbackup --compression $mode" ;;
    borg) label="virtbackup --compression none into borg" ;;
    *) label="virtnbdbackup -l copy -o - (zip)" ;;
  esac
  echo "| $label | 1. first full | ${result[$mode,1]} |"
  echo "| $label | 2. again, no change | ${result[$mode,2]} |"
  echo "| $label | 3. after 4 x 4 KiB random writes | ${result[$mode,3]} |"
  echo "| $label | 4. after a 16 MiB random write | ${result[$mode,4]} |"
done
echo
echo "restic $(restic version | cut -d' ' -f2), repository version $repo_version (restic compresses: auto);" \
  "virtbackup members: ${members:-?}; disk: 4 GiB, $((allocated / MIB)) MiB allocated;" \
  "writes: ${VBT_DEDUP_WRITES_IN:-mixed}, seed ${VBT_DEDUP_SEED:-1}"
if [[ " $MODES " == *" borg "* || " $MODES " == *" synthetic "* ]]; then
  echo "borg $(borg --version | cut -d' ' -f2), unencrypted, --compression zstd,3; its data_added is borg's deduplicated_size (compressed)"
fi
if [[ " $MODES " == *" synthetic "* ]]; then
  for host in restic borg; do
    echo "synthetic full in $host: added $(awk -v s="${growth[synthetic-$host,3]}" -v i="${growth[synthetic-$host,2]}" \
      'BEGIN { printf "%.2f", s / i }')x what the incremental added (target: at most 1.50x)"
  done
fi
if ((verdict)); then log "MISSED: see above (issue 5: --compression none adds <= 8 MiB after 4 x 4 KiB, <= 24 MiB after 16 MiB)"; fi
exit "$verdict"
