#!/usr/bin/env bash
# start-daemons.sh: start virtlogd and libvirtd without systemd and wait until libvirt answers.
#
# Usage: bash integration/lab/start-daemons.sh [TIMEOUT_SECONDS]   (default 30)
#
# Starts each daemon with -d only when it is not already running, makes sure /run/libvirt and the
# default image directory /var/lib/libvirt/images exist, then polls `virsh -c qemu:///system version`
# until it answers; exits non-zero with a clear message when it does not answer in time. Also gives
# /dev/kvm the group and mode udev would (see below), and before libvirtd starts lets members of group
# `libvirt` use qemu:///system without polkit (there is no dbus/polkit here), so non-root users can run
# virtbackup: in /etc/libvirt/libvirtd.conf unix_sock_group = "libvirt", unix_sock_rw_perms = "0770",
# auth_unix_rw = "none". A libvirtd already running with an older configuration keeps it until it is
# restarted (integration/lab/restart-libvirtd.sh); this script says so.
# libvirtd runs in the foreground under `tini -s` (a child subreaper), not daemonized with -d: libvirt daemonizes
# QEMU and swtpm, and an orphan goes to the nearest subreaper, else to PID 1. Where PID 1 is not a real init (this
# lab's sandbox) it reaps late (1.8 s here), and libvirt's destroy waits until the QEMU process is gone: every VM
# stop took 2 s instead of 0.2 s. A libvirtd found running without tini, with no domain running, is restarted
# under it.
# Idempotent: a second run finds both daemons up and returns at once.
set -euo pipefail

TIMEOUT=${1:-30}
URI=qemu:///system

if [[ $(id -u) -ne 0 ]]; then
  echo "start-daemons.sh: must run as root" >&2
  exit 1
fi
for tool in virtlogd libvirtd virsh; do
  if ! command -v "$tool" >/dev/null; then
    echo "start-daemons.sh: $tool not found; run integration/lab/install.sh first" >&2
    exit 1
  fi
done

mkdir -p /run/libvirt /var/lib/libvirt/images

# Without udev, /dev/kvm stays root:root 0600. QEMU's capability probe (run by root) then reports KVM,
# while libvirt finds /dev/kvm unusable for the qemu user, declares its capability cache stale and
# re-probes QEMU on every define and start (~50 s under TCG). Give /dev/kvm the group and mode udev
# would: the lab's guests stay TCG (type='qemu') either way.
if [[ -c /dev/kvm ]] && getent group kvm >/dev/null && [[ $(stat -c %G:%a /dev/kvm) != kvm:66? ]]; then
  echo "start-daemons.sh: /dev/kvm -> group kvm, mode 0660 (as udev would set it)"
  chgrp kvm /dev/kvm
  chmod 0660 /dev/kvm
fi

# Group `libvirt` may use the read-write socket without polkit. Each key is set in place (or appended),
# so a second run changes nothing.
LIBVIRTD_CONF=/etc/libvirt/libvirtd.conf
conf_changed=no
set_conf() {
  local key=$1 value=$2 line
  line="$key = \"$value\""
  if grep -qxF "$line" "$LIBVIRTD_CONF"; then
    return
  fi
  if grep -qE "^[[:space:]]*${key}[[:space:]]*=" "$LIBVIRTD_CONF"; then
    sed -i -E "s|^[[:space:]]*${key}[[:space:]]*=.*|$line|" "$LIBVIRTD_CONF"
  else
    printf '%s\n' "$line" >>"$LIBVIRTD_CONF"
  fi
  conf_changed=yes
}
getent group libvirt >/dev/null || groupadd --system libvirt
set_conf unix_sock_group libvirt
set_conf unix_sock_rw_perms 0770
set_conf auth_unix_rw none
if [[ $conf_changed == yes ]]; then
  echo "start-daemons.sh: $LIBVIRTD_CONF: group libvirt may use qemu:///system (auth_unix_rw none)"
fi

# A daemon counts as running when the pid in its pid file is alive and is that daemon.
running() {
  local name=$1 pidfile=/run/$1.pid pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ -r /proc/$pid/comm && $(<"/proc/$pid/comm") == "$name" ]]
}

# Starts a daemon without the caller's open files above stdio: a daemon keeps what it inherits for as long as
# it runs, and a libvirtd started under `flock LOCK ...` (the bench lock) held that lock until it was restarted.
without_inherited_files() (
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    ((fd > 2)) && eval "exec $fd>&-"
  done
  exec "$@"
)

# libvirtd runs under tini when its parent process is tini.
under_tini() {
  local ppid
  ppid=$(awk '{print $4}' "/proc/$(</run/libvirtd.pid)/stat" 2>/dev/null) || return 1
  [[ -r /proc/$ppid/comm && $(<"/proc/$ppid/comm") == tini ]]
}
if command -v tini >/dev/null && running libvirtd && ! under_tini \
  && [[ -z $(virsh -c "$URI" list --name 2>/dev/null | tr -d '[:space:]') ]]; then
  echo "start-daemons.sh: restarting libvirtd under tini (no domain runs)"
  pid=$(</run/libvirtd.pid)
  kill -TERM "$pid"
  for _ in $(seq 300); do # 30 s
    [[ -e /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] || break
    sleep 0.1
  done
fi
for daemon in virtlogd libvirtd; do
  if running "$daemon"; then
    echo "start-daemons.sh: $daemon is running"
    if [[ $daemon == libvirtd && $conf_changed == yes ]]; then
      echo "start-daemons.sh: libvirtd runs with its old configuration until integration/lab/restart-libvirtd.sh"
    fi
  else
    echo "start-daemons.sh: starting $daemon"
    if [[ $daemon == libvirtd ]] && command -v tini >/dev/null; then
      # setsid -f: forked into a session of its own (nothing signalled to this script's group reaches it), and
      # this script goes on at once.
      without_inherited_files setsid -f tini -s -- libvirtd </dev/null >/dev/null 2>&1
    else
      without_inherited_files "$daemon" -d
    fi
  fi
done

deadline=$((SECONDS + TIMEOUT))
until virsh -c "$URI" version >/dev/null 2>&1; do
  if ((SECONDS >= deadline)); then
    echo "start-daemons.sh: libvirtd did not answer on $URI within ${TIMEOUT}s;" \
      "see /var/log/libvirt/libvirtd.log or run 'libvirtd' in the foreground" >&2
    exit 1
  fi
  sleep 0.2
done
echo "start-daemons.sh: libvirt answers on $URI"
