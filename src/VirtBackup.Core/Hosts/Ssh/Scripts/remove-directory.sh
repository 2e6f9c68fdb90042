#!/bin/sh
# SshHypervisorHost: run over SSH as: sh -c SCRIPT virtbackup ARGS...

exec rm -rf -- "$1"
