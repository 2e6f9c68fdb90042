#!/bin/sh
# SshHypervisorHost: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# Prints the file; exit 3: there is none, exit 4: the remote user cannot read it.
if [ ! -e "$1" ]; then exit 3; fi
if [ ! -r "$1" ]; then exit 4; fi
exec cat -- "$1"
