#!/bin/sh
# SshHostFiles: run over SSH as: sh -c SCRIPT virtbackup ARGS...

if [ -e "$1" ] || [ -L "$1" ]; then echo yes; else echo no; fi
