#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = path. "d|f SIZE SECONDS.FRACTION" (symlinks followed); exit 3 when nothing is there.
if [ ! -e "$1" ]; then exit 3; fi
exec find -L "$1" -maxdepth 0 -printf '%y %s %T@\n'
