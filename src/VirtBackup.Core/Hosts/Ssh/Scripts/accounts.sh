#!/bin/sh
# SshHypervisorHost: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# "EUID UID GID" with "-" for a user or group that does not exist.
u=$(id -u "$1" 2>/dev/null) || u=-
g=$(getent group "$2" 2>/dev/null | cut -d: -f3)
printf '%s %s %s\n' "$(id -u)" "$u" "${g:--}"
