#!/usr/bin/env bash
# run.sh: the pause window of a backup through qemu+ssh://root@127.0.0.1/system (the remote code path:
# the state files read over SSH by the command armed before the pause, libvirt through its remote driver)
# against qemu:///system (local), for the same lab VM in one run. Backups alternate local/remote so that
# the machine's load drifts over both alike. The pause window is each stream's manifest `pauseWindowMs`.
#
# Usage: bash integration/bench/remote/run.sh [RUNS]     (default 7; >= 5 for the RESULTS.md table)
# Prints a markdown table (the one in RESULTS.md) on stdout; progress on stderr. Run as root. Creates one
# lab VM (vbt-benchremote-PID, 64 MiB disk) and removes it, whatever happens. Not part of the test suite.
set -euo pipefail

RUNS=${1:-7}
[[ $RUNS =~ ^[0-9]+$ && $RUNS -ge 1 ]] || { echo "run.sh: RUNS must be a positive number" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
LAB=$ROOT/integration/lab
KEY=/root/.ssh/virtbackup_test_ed25519
REMOTE="qemu+ssh://root@127.0.0.1/system?keyfile=$KEY"
LOCAL=qemu:///system
NAME=vbt-benchremote-$$
WORK=$(mktemp -d /tmp/vbt-benchremote-XXXXXX)

cleanup() {
  bash "$LAB/domain.sh" remove "$NAME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "run.sh: $*" >&2; }

bash "$LAB/start-daemons.sh" >&2
bash "$LAB/sshd.sh" >&2
log "building virtbackup (Release)"
dotnet build -c Release -v q -nologo "$ROOT/src/VirtBackup.Cli/VirtBackup.Cli.csproj" -o "$WORK/bin" >&2
VB=$WORK/bin/virtbackup

log "creating $NAME"
bash "$LAB/domain.sh" create "$NAME" --disk-size 64M --fill >/dev/null
sleep 5 # let the firmware settle

# backup URI OUT: one copy-level backup; prints the manifest's pauseWindowMs.
backup() {
  "$VB" backup --connect "$1" --domain "$NAME" --level copy --compression none --state-dir "$WORK/state" \
    >"$2" 2>"$2.log" || { cat "$2.log" >&2; exit 1; }
  tar -xOf "$2" virtbackup/manifest.json | jq -r .pauseWindowMs
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

log "warm-up (not counted)"
backup "$LOCAL" "$WORK/warm-local.tar" >/dev/null
backup "$REMOTE" "$WORK/warm-remote.tar" >/dev/null

: >"$WORK/local.ms"
: >"$WORK/remote.ms"
: >"$WORK/read.ms"
for i in $(seq "$RUNS"); do
  backup "$LOCAL" "$WORK/local.tar" >>"$WORK/local.ms"
  backup "$REMOTE" "$WORK/remote.tar" >>"$WORK/remote.ms"
  # How long the one remote command of the state read took (inside the pause), from the remote run's log.
  sed -n 's/.* over SSH: .* in one remote command, \([0-9.]*\) ms.*/\1/p' "$WORK/remote.tar.log" >>"$WORK/read.ms"
  log "run $i/$RUNS: local $(tail -n 1 "$WORK/local.ms") ms, remote $(tail -n 1 "$WORK/remote.ms") ms"
done

local_median=$(median <"$WORK/local.ms")
remote_median=$(median <"$WORK/remote.ms")
read_median=$(median <"$WORK/read.ms")
samples() { paste -sd, "$1" | sed 's/,/, /g'; }

cat <<TABLE
Pause window (manifest \`pauseWindowMs\`), lab VM $NAME (64 MiB qcow2, OVMF NVRAM 540 KiB, swtpm TPM 2.0), $RUNS backups each, alternating; $(date -u '+%Y-%m-%d %H:%M UTC'); load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores.

| path | URI | samples (ms) | median (ms) |
| --- | --- | --- | --- |
| local | \`$LOCAL\` | $(samples "$WORK/local.ms") | $local_median |
| remote | \`qemu+ssh://root@127.0.0.1/system\` | $(samples "$WORK/remote.ms") | $remote_median |
| remote − local | | | $(awk -v r="$remote_median" -v l="$local_median" 'BEGIN { print r - l }') |

State read over SSH inside the remote pause (one remote command armed before the pause): median $read_median ms (samples $(samples "$WORK/read.ms")).
TABLE
