#!/usr/bin/env bash
# restart-libvirtd.sh: stop libvirtd, start it again and wait until it answers, as a fault for the
# reliability tests ("libvirtd restarts while virtbackup works") and to apply a changed libvirtd.conf.
#
# Usage: bash integration/lab/restart-libvirtd.sh [TIMEOUT_SECONDS]   (default 30)
#
# Sends SIGTERM to the libvirtd of /run/libvirtd.pid (SIGKILL after TIMEOUT), waits until it is gone,
# starts libvirtd again through start-daemons.sh (under tini, with its configuration) and polls `virsh version` until it
# answers. Running guests keep running: libvirtd reconnects to their QEMU processes. Clients lose their
# connections, which is the point. One restart at a time (flock). Run as root, without systemd.
set -euo pipefail

TIMEOUT=${1:-30}
PIDFILE=/run/libvirtd.pid

if [[ $(id -u) -ne 0 ]]; then
  echo "restart-libvirtd.sh: must run as root" >&2
  exit 1
fi

exec 9>/run/virtbackup-restart-libvirtd.lock
flock 9

if [[ -s $PIDFILE ]]; then
  pid=$(<"$PIDFILE")
  if [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == libvirtd ]]; then
    kill -TERM "$pid"
    deadline=$((SECONDS + TIMEOUT))
    # Gone, or a zombie its parent has not reaped yet.
    while [[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; do
      if ((SECONDS >= deadline)); then
        echo "restart-libvirtd.sh: libvirtd $pid ignored SIGTERM for ${TIMEOUT}s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.1
    done
  fi
fi

# 9>&-: the new libvirtd must not inherit (and hold forever) the lock of this script.
bash "$(dirname "${BASH_SOURCE[0]}")/start-daemons.sh" "$TIMEOUT" >/dev/null 9>&-
echo "restart-libvirtd.sh: libvirtd restarted (pid $(<"$PIDFILE"))"
