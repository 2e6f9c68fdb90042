#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = path, $2 = umask giving the mode. Creates it and its missing parents.
if [ -d "$1" ]; then exit 0; fi
umask "$2"
exec mkdir -p -- "$1"
