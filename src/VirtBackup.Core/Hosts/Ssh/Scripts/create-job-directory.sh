#!/bin/sh
# SshHypervisorHost: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 root, $2 the new directory (in the root; an existing one is an error), $3 owner, $4 group (empty:
# unchanged).
set -eu
if [ ! -d "$1" ]; then mkdir -m 0711 -- "$1"; fi
mkdir -m 0700 -- "$2"
if [ -n "$3" ]; then chown -- "$3:$4" "$2"; fi
