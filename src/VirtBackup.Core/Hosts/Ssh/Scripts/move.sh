#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...

exec mv -f -T -- "$1" "$2"
