#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = path. Prints (NUL-terminated) what the remote user cannot read or enter; exit 3 when nothing is there;
# otherwise find's own exit code (non-zero when it could not look somewhere).
p=$1
if [ ! -e "$p" ]; then exit 3; fi
if [ -d "$p" ]; then
  exec find -H "$p" \( ! -readable -o -type d ! -executable \) -print0
fi
[ -r "$p" ] || printf '%s\0' "$p"
