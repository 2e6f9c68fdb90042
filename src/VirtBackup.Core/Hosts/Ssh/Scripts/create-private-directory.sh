#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = parent, $2 = name prefix. Prints the new 0700 directory.
exec mktemp -d -- "$1/$2XXXXXX"
