#!/usr/bin/env bash
# Runs every test VirtBackup has, after doing all set-up on a fresh Debian 12 machine (as root):
# installs the lab's packages, starts virtlogd/libvirtd, builds the guest-agent VM's kernel and initramfs,
# builds the solution, runs integration/lint.sh (shellcheck, C# style), the unit, peer and integration tests, then
# the integration tests marked [Trait("Installed", "true")] again against the executable contrib/install.sh builds
# (Native AOT, as it ships), and ends with one line "N passed, N failed, N skipped" (a lint failure counts as one).
#   integration/run-tests.sh [extra dotnet test args, e.g. --filter FullyQualifiedName~Nbd]
# Long soaks and big fuzz runs are off unless VIRTBACKUP_LONG_TESTS=1.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

command -v dotnet >/dev/null || { echo "run-tests: the .NET 10 SDK (dotnet) is required" >&2; exit 1; }
bash integration/lab/install.sh
bash integration/hosts/install.sh
bash integration/lab/backup-tls.sh # before libvirtd starts: it reads backup_tls_x509_cert_dir then
bash integration/lab/start-daemons.sh
bash integration/lab/sshd.sh
bash integration/lab/agent-guest.sh >/dev/null # the guest-agent VM's kernel and initramfs (built once, cached)
bash integration/lab/agent-guest.sh --oracle >/dev/null # the oracle guest (OracleTests): the same plus the consistency workload

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build VirtBackup.Plugin.sln -c Release -nologo -clp:ErrorsOnly

log=$(mktemp /tmp/virtbackup-tests.XXXXXX)
results=$(mktemp -d /tmp/virtbackup-results.XXXXXX) # trx files: every test's duration, for the slowest list below
trap 'rm -f "$log"; rm -rf "$results"' EXIT
status=0
# Static checks first (shellcheck, C# style): a failure counts as one failed test and fails the run; the tests
# still run. Skipped when arguments narrow the run.
if (($# == 0)) && ! bash integration/lint.sh --no-restore 2>&1 | tee -a "$log"; then
  echo "Failed!  - Failed:     1, Passed:     0, Skipped:     0, Total:     1 (integration/lint.sh)" >> "$log"
  status=1
fi
dotnet test VirtBackup.Plugin.sln -c Release --no-build -nologo --logger trx --results-directory "$results" "$@" 2>&1 |
  tee -a "$log" || status=$?

# The executable as it ships (contrib/install.sh: Native AOT) runs the integration tests marked
# [Trait("Installed", "true")] once more (backup running and shut-off, restore, restic, signals, NBD over TLS). Skipped when arguments narrow the run, or with VIRTBACKUP_SKIP_INSTALLED=1.
if (($# == 0)) && [[ ${VIRTBACKUP_SKIP_INSTALLED:-0} != 1 ]]; then
  installed=$(mktemp -d /tmp/virtbackup-installed.XXXXXX)
  trap 'rm -f "$log"; rm -rf "$results" "$installed"' EXIT
  if bash contrib/install.sh --prefix "$installed"; then
    VIRTBACKUP_TEST_EXECUTABLE=$installed/bin/virtbackup dotnet test integration/VirtBackup.IntegrationTests -c Release --no-build -nologo \
      --filter Installed=true \
      2>&1 | tee -a "$log" || status=$?
  else
    echo "run-tests: contrib/install.sh failed" | tee -a "$log"
    echo "Failed!  - Failed:     1, Passed:     0, Skipped:     0, Total:     1 (contrib/install.sh)" >> "$log"
    status=1
  fi
fi

# The slowest tests of the main run: where the 30-minute CI budget goes.
echo "run-tests: the 20 slowest tests"
cat "$results"/*.trx 2>/dev/null | grep -o '<UnitTestResult [^>]*' |
  sed -n 's/.*testName="\([^"]*\)".*duration="\([0-9]*\):\([0-9]*\):\([0-9.]*\)".*/\2 \3 \4 \1/p' |
  awk '{ name = $4; for (i = 5; i <= NF; i++) name = name " " $i; printf "%8.1f s  %s\n", $1 * 3600 + $2 * 60 + $3, name }' |
  sort -rn | awk 'NR <= 20' # not head: under pipefail, sort killed by SIGPIPE would end the run with 141 before the summary

# dotnet test prints one summary per test assembly; add them up into the one closing line CI reads.
awk '/^(Passed|Failed)!/ {
       for (i = 1; i <= NF; i++) {
         if ($i == "Failed:")  { f += $(i + 1) }
         if ($i == "Passed:")  { p += $(i + 1) }
         if ($i == "Skipped:") { s += $(i + 1) }
       }
     }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
