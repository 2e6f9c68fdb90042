#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $@ = the directories, outermost first. "UID GID OCTAL-MODE" for each, up to the first that is not a directory.
for p; do
  [ -d "$p" ] || exit 0
  stat -L -c '%u %g %a' -- "$p" || exit 1
done
