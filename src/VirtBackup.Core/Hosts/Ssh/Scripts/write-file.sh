#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 parent, $2 name, $3 owner, $4 group (both empty: unchanged), $5 mode, $6 size; content on stdin. A 0600
# file (umask 077) next to the target, checked, synced, given owner and mode, renamed over the target.
set -eu
umask 077
if [ ! -d "$1" ]; then printf 'there is no directory %s\n' "$1" >&2; exit 3; fi
tmp=$(mktemp -- "$1/.$2.vbtmp-XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat >"$tmp"
n=$(wc -c <"$tmp")
if [ "$n" -ne "$6" ]; then echo "received $n of $6 bytes" >&2; exit 1; fi
sync -- "$tmp" 2>/dev/null || sync
if [ -n "$3" ]; then chown -- "$3:$4" "$tmp"; fi
chmod -- "$5" "$tmp"
mv -f -T -- "$tmp" "$1/$2"
trap - EXIT
