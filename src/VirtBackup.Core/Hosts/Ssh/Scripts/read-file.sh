#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = path. The bytes of one regular file (a symlink to one is followed).
if [ ! -e "$1" ]; then echo "no such file" >&2; exit 3; fi
if [ ! -f "$1" ]; then echo "not a regular file" >&2; exit 1; fi
exec cat -- "$1"
