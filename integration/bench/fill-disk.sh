#!/usr/bin/env bash
# fill-disk.sh: fill a qcow2 image (not in use) with the benchmark's mixed data.
#
# Usage: fill-disk.sh IMAGE [DATA_FILE [RUNS [RUN_SIZE_MIB]]]   (defaults: 48 runs of 16 MiB = 768 MiB)
#
# Writes RUNS runs of RUN_SIZE_MIB MiB, spread evenly over the image's virtual size with holes
# between them, alternating incompressible data (/dev/urandom) and repetitive text (`seq` output,
# which zstd -1 shrinks more than 10x). Every run has its own content. With DATA_FILE, the runs are
# also kept there, concatenated: exactly the allocated data (for `zstd -1 -T2 DATA_FILE`). Prints the
# allocated bytes.
set -euo pipefail

image=${1:?usage: fill-disk.sh IMAGE [DATA_FILE [RUNS [RUN_SIZE_MIB]]]}
data=${2:-}
runs=${3:-48}
run_mib=${4:-16}
mib=$((1024 * 1024))

size=$(qemu-img info --output=json "$image" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
stride=$((size / runs / mib * mib))
if ((stride < run_mib * mib)); then
  echo "fill-disk.sh: $runs runs of $run_mib MiB do not fit in $size bytes" >&2
  exit 1
fi

work=$(mktemp -d /tmp/vbt-bench-fill.XXXXXX)
trap 'rm -rf "$work"' EXIT
commands=()
for ((i = 0; i < runs; i++)); do
  file=$work/run$i
  if ((i % 2 == 0)); then
    head -c $((run_mib * mib)) /dev/urandom >"$file"
  else
    # seq ends on SIGPIPE when head has enough: that is success here.
    { seq $((i * 100000000)) 1 inf || true; } | head -c $((run_mib * mib)) >"$file"
  fi
  commands+=(-c "write -q -s $file $((i * stride)) $((run_mib * mib))")
done
qemu-io -f qcow2 "${commands[@]}" "$image" >/dev/null
if [[ -n $data ]]; then
  for ((i = 0; i < runs; i++)); do
    cat "$work/run$i"
  done >"$data"
fi
echo $((runs * run_mib * mib))
