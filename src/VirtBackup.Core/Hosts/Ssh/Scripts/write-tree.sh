#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 parent, $2 name, $3 owner, $4 group (both empty: unchanged), $5 file mode, $6 directory mode, $7 file
# count; a tar of 0600 files and 0700 directories on stdin. Extracted (umask 077, our ownership) into a 0700
# directory next to the target, checked, synced, given owner and modes, renamed into place; an existing target
# is moved into a 0700 directory first and removed last.
set -eu
umask 077
if [ ! -d "$1" ]; then (umask 022 && mkdir -p -- "$1"); fi
target="$1/$2"
old=
tmp=$(mktemp -d -- "$1/.$2.vbtmp-XXXXXX")
trap 'rm -rf -- "$tmp"; if [ -n "$old" ]; then rm -rf -- "$old"; fi' EXIT
tar -x -f - -C "$tmp" --no-same-owner --no-same-permissions
n=$(find "$tmp" -type f -printf x | wc -c)
if [ "$n" -ne "$7" ]; then echo "received $n of $7 files" >&2; exit 1; fi
find "$tmp" -type f -exec sync -- {} + 2>/dev/null || sync
if [ -n "$3" ]; then find "$tmp" -exec chown -h -- "$3:$4" {} +; fi
find "$tmp" -type f -exec chmod -- "$5" {} +
find "$tmp" -depth -type d -exec chmod -- "$6" {} +
if [ -e "$target" ] || [ -L "$target" ]; then
  old=$(mktemp -d -- "$1/.$2.vbold-XXXXXX")
  mv -T -- "$target" "$old/old"
  if ! mv -T -- "$tmp" "$target"; then
    mv -T -- "$old/old" "$target"
    rmdir -- "$old"
    old=
    exit 1
  fi
else
  mv -T -- "$tmp" "$target"
fi
