#!/usr/bin/env bash
# install.sh: builds virtbackup as it ships (a Native AOT executable: one file, no .NET runtime needed to
# run it) and installs it as PREFIX/bin/virtbackup (mode 0755).
#
# Usage: contrib/install.sh [--prefix DIR] [--glue]   (default /usr/local)
#   --glue  also install the restic and borg wrappers (contrib/restic, contrib/borg) and the file they
#           source (contrib/virtbackup-glue-lib.sh) into PREFIX/sbin
#
# Needs the .NET 10 SDK to build, and a C toolchain to link (Native AOT links with clang or gcc): when
# neither is there and this runs as root, gcc and libc6-dev are installed with apt. At run time the
# executable needs what every virtbackup needs: libvirt0 (libvirt.so.0), qemu-utils (qemu-img, qemu-nbd),
# and for a remote host, openssh-client. The Bacula scripts (contrib/bacula) are installed separately,
# and so are the restic and borg ones without --glue: see docs/HOSTS.md.
set -euo pipefail

prefix=/usr/local glue=''
while (($#)); do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --glue) glue=1; shift ;;
    -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command -v dotnet >/dev/null || { echo "install.sh: the .NET 10 SDK (dotnet) is required to build" >&2; exit 1; }
if ! command -v clang >/dev/null && ! command -v gcc >/dev/null; then
  if [[ $(id -u) -ne 0 ]]; then
    echo "install.sh: Native AOT links with clang or gcc: install one (apt-get install gcc libc6-dev)" >&2
    exit 1
  fi
  echo "install.sh: installing gcc and libc6-dev (Native AOT links with them)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi

out=$(mktemp -d /tmp/virtbackup-publish.XXXXXX)
trap 'rm -rf "$out"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet publish "$root/src/VirtBackup.Cli" -c Release -r linux-x64 -o "$out" -nologo -clp:ErrorsOnly >&2
install -d "$prefix/bin"
install -m 0755 "$out/virtbackup" "$prefix/bin/virtbackup"
echo "install.sh: installed $prefix/bin/virtbackup ($("$prefix/bin/virtbackup" --version 2>&1))" >&2
if [[ -n $glue ]]; then
  install -d "$prefix/sbin"
  install -m 0755 "$root"/contrib/restic/virtbackup-restic-* "$root"/contrib/borg/virtbackup-borg-* "$prefix/sbin/"
  install -m 0644 "$root/contrib/virtbackup-glue-lib.sh" "$prefix/sbin/"
  echo "install.sh: installed the restic and borg wrappers in $prefix/sbin" >&2
fi
