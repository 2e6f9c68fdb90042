#!/bin/sh
# SshHypervisorHost: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = user. Its group ids (none when there is no such user).
id -G -- "$1" 2>/dev/null || true
