#!/usr/bin/env bash
# install.sh: install what the host-glue tests need on a Debian 12 host (run as root): restic, borg, the
# Bacula director (with its SQLite catalog backend), storage daemon, file daemon (bpipe plugin) and
# console, plus tar, zstd, jq and sqlite3 used by the scripts and the lab, and systemd for
# `systemd-analyze verify` of the example units.
#
# Usage: bash integration/hosts/install.sh
#
# Idempotent: when every package is installed it returns at once without touching apt. Concurrent
# callers are serialised with a lock, and apt waits for a dpkg lock held by someone else.
# Nothing is started (the packages' services are not used: integration/hosts/bacula-lab.sh runs a
# private Bacula on its own ports).
set -euo pipefail

PACKAGES=(
  restic borgbackup
  bacula-director bacula-director-sqlite3 bacula-sd bacula-fd bacula-console
  tar zstd jq sqlite3
  systemd
)

if [[ $(id -u) -ne 0 ]]; then
  echo "install.sh: must run as root" >&2
  exit 1
fi

missing() {
  local package status
  for package in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
    [[ $status == installed ]] || printf '%s\n' "$package"
  done
}

todo=$(missing)
if [[ -z $todo ]]; then
  echo "install.sh: all ${#PACKAGES[@]} host-glue packages are installed"
  exit 0
fi

exec 9>/var/lock/virtbackup-hosts-install.lock
flock 9
todo=$(missing)
if [[ -z $todo ]]; then
  echo "install.sh: installed meanwhile by another caller"
  exit 0
fi

echo "install.sh: installing ${todo//$'\n'/ }"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -q
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends $todo
echo "install.sh: done"
