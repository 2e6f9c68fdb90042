#!/bin/sh
# SshHostImages: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = "uid:gid" or "", then pairs of path and virtual size in bytes: empty qcow2 images, 0600, chowned.
umask 077
owner=$1
shift
while [ "$#" -ge 2 ]; do
  rm -f -- "$1"
  qemu-img create -q -f qcow2 -o compat=1.1,lazy_refcounts=off "$1" "$2" || exit 1
  if [ -n "$owner" ]; then chown -- "$owner" "$1" || exit 1; fi
  shift 2
done
