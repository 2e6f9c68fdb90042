#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...
# $1 = directory. Refuses anything but regular files and directories below it, then sends the tree as a pax
# tar (hard links as content, numeric owners).
if [ ! -e "$1" ]; then echo "no such directory" >&2; exit 3; fi
if [ ! -d "$1" ]; then echo "not a directory" >&2; exit 1; fi
odd=$(find -H "$1" ! -type f ! -type d -print | head -n 5)
if [ -n "$odd" ]; then
  printf 'not a regular file or directory: %s\n' "$odd" >&2
  exit 1
fi
exec tar -C "$1" --format=pax --hard-dereference --numeric-owner -cf - .
