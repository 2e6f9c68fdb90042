#!/bin/sh
# SshHostImages: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $@ = paths.
exec rm -f -- "$@"
