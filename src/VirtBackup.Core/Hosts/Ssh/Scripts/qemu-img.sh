#!/bin/sh
# SshHostImages: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $@ = qemu-img arguments.
umask 077
exec qemu-img "$@"
