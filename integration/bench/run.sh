#!/usr/bin/env bash
# run.sh: VirtBackup's benchmarks against their real peers, on this machine (Debian 12, as root).
#
# Usage: integration/bench/run.sh [RUNS]        (default 5; every figure is a median of RUNS runs)
#   BENCH_ONLY=read,backup,pause,rss,inc,restore,boot,serve,consolidate   run a subset (default: all nine)
#
# Builds Release, installs the lab (integration/lab/install.sh, start-daemons.sh) and the peers
# (virtnbdbackup with virtnbdrestore, GNU time), creates up to three lab VMs named vbt-bench-<pid>-*: a
# 4 GiB and a 32 GiB disk each holding the same kind of 768 MiB of mixed data (fill-disk.sh, written
# before the VM starts), and a 256 MiB one for the pause window (the 32 GiB and the pause VM only when
# rss, boot, serve or consolidate and the pause benchmarks run). The domains boot and restore make
# (NAME-b, NAME-r, NAME-rs) keep their disks in /var/lib/libvirt/images/vbt-bench-<pid>-disks. Then
# `VirtBackup.Bench run` measures ours and each peer interleaved in this one run and prints the results
# table. The VMs and the work directory are removed at exit, whatever happens. Not part of the test suite: CI never runs this.
set -euo pipefail

runs=${1:-5}
only=${BENCH_ONLY:-read,backup,pause,rss,inc,restore,boot,serve,consolidate}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
lab=$root/integration/lab
bench=$root/integration/bench

[[ $(id -u) -eq 0 ]] || { echo "run.sh: must run as root" >&2; exit 1; }
command -v dotnet >/dev/null || { echo "run.sh: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }

bash "$lab/install.sh"
peers=()
command -v virtnbdbackup >/dev/null || peers+=(virtnbdbackup)
[[ -x /usr/bin/time ]] || peers+=(time)
command -v clang >/dev/null || command -v gcc >/dev/null || peers+=(gcc libc6-dev)   # Native AOT links with it
if ((${#peers[@]})); then
  echo "run.sh: installing ${peers[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${peers[@]}" >/dev/null
fi
bash "$lab/start-daemons.sh"

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
prefix=vbt-bench-$$
d4=$prefix-4g
d32=$prefix-32g
dp=$prefix-pause
work=$(mktemp -d "/tmp/$prefix.XXXXXX")
disks=/var/lib/libvirt/images/$prefix-disks # QEMU's user must enter it: not below mktemp's 0700 work directory
# shellcheck disable=SC2317 # run by the EXIT trap, which shellcheck does not follow
cleanup() {
  local name
  for name in "$d4-b" "$d32-b"; do # booted from a stream (boot): its server, overlays and domain
    if [[ -e /run/virtbackup/boot-$name ]]; then
      "$virtbackup" boot --stop "$name" >/dev/null 2>&1 || echo "run.sh: could not stop the boot $name" >&2
    fi
  done
  for name in "$d4" "$d32" "$dp" "$d4-r" "$d4-rs"; do
    bash "$lab/domain.sh" remove "$name" >/dev/null 2>&1 || echo "run.sh: could not remove $name" >&2
  done
  rm -rf "$work" "$disks"
}
virtbackup=$work/virtbackup/virtbackup
trap cleanup EXIT
trap 'exit 130' INT TERM

# virtbackup as it ships: published for the runtime (Native AOT, see VirtBackup.Cli.csproj).
dotnet publish "$root/src/VirtBackup.Cli" -c Release -r linux-x64 -o "$work/virtbackup" -nologo -clp:ErrorsOnly
# The bench app too: its nbd-read verb is benchmark 1's reader, timed as a whole process like nbdcopy.
dotnet publish "$bench/VirtBackup.Bench" -c Release -r linux-x64 --self-contained false -p:PublishReadyToRun=true \
  -o "$work/bench" -nologo -clp:ErrorsOnly
bench_app=$work/bench/VirtBackup.Bench

# A lab VM whose vda holds the benchmark data: create, stop, fill the image, start again.
create_filled() {
  local name=$1 size=$2 data=$3
  bash "$lab/domain.sh" create "$name" --disk-size "$size" >/dev/null
  virsh -q destroy "$name" >/dev/null
  bash "$bench/fill-disk.sh" "/var/lib/libvirt/images/$name-vda.qcow2" "$data" >/dev/null
  virsh -q start "$name" >/dev/null
}

selected() { [[ ",$only," == *",$1,"* ]]; }
need32=no
for name in rss boot serve consolidate; do
  if selected "$name"; then need32=yes; fi
done
echo "run.sh: creating $d4$([[ $need32 == yes ]] && echo ", $d32")$(selected pause && echo ", $dp")"
create_filled "$d4" 4G "$work/data-4g.bin"
if [[ $need32 == yes ]]; then create_filled "$d32" 32G ""; fi
if selected pause; then bash "$lab/domain.sh" create "$dp" --disk-size 256M --fill >/dev/null; fi

mkdir -m 0755 "$disks"
status=0
"$bench_app" run --domain "$d4" --domain32 "$d32" --pause-domain "$dp" --data "$work/data-4g.bin" \
  --virtbackup "$virtbackup" --domain-script "$lab/domain.sh" --work "$work" --disk-dir "$disks" --runs "$runs" \
  --only "$only" || status=$?
echo "run.sh: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
