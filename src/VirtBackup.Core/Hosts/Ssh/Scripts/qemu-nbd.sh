#!/bin/sh
# SshHostImages: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $@ = qemu-nbd arguments but the socket. Starts qemu-nbd with --fork on a socket in a new private directory
# (the parent exits once the server listens), prints the socket's path, then waits for the end of its input
# (our side closing the channel, or the connection dying) to stop qemu-nbd and remove the directory. qemu-nbd
# forgets a SIGTERM that arrives while it is still starting up, so it is sent again each second, and the
# server is killed after 10 s.
umask 077
dir=$(mktemp -d "${TMPDIR:-/tmp}/virtbackup-nbd-XXXXXX") || exit 1
pid=
stop() {
  if [ -n "$pid" ]; then
    n=0
    while kill -0 "$pid" 2>/dev/null; do
      if [ $((n % 20)) -eq 0 ]; then kill "$pid" 2>/dev/null; fi
      if [ "$n" -ge 200 ]; then kill -9 "$pid" 2>/dev/null; fi
      n=$((n + 1))
      sleep 0.05
    done
  fi
  rm -rf -- "$dir"
}
trap stop EXIT
trap 'exit 1' HUP INT TERM
if ! qemu-nbd --fork --pid-file "$dir/pid" -k "$dir/nbd.sock" "$@" </dev/null 2>"$dir/err"; then
  cat -- "$dir/err" >&2
  exit 1
fi
pid=$(cat -- "$dir/pid")
printf '%s\n' "$dir/nbd.sock"
cat >/dev/null
