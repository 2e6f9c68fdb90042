#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = file or empty, $2 = directory or empty. Ready at once; on "go", one pax tar: the file as "./NAME"
# first, then the directory's tree as "." and below (hard links as content, numeric owners). swtpm's temporary
# files (TMP2-*, TMP-*: a store in progress, renamed over the real file when done) are left out: one can vanish
# between tar's listing and its read.
echo ready
IFS= read -r go || exit 1
[ "$go" = go ] || exit 1
f=$1 d=$2
set --
if [ -n "$f" ]; then
  p=${f%/*}
  set -- -C "${p:-/}" "./${f##*/}"
fi
if [ -n "$d" ]; then set -- "$@" -C "$d" .; fi
exec tar --format=pax --hard-dereference --numeric-owner --exclude='TMP2-*' --exclude='TMP-*' -cf - "$@"
