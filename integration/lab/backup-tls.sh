#!/usr/bin/env bash
# backup-tls.sh: TLS for libvirt's backup NBD server (`<server transport='tcp' tls='yes'>`), for the
# `--nbd-transport tcp --nbd-tls-dir` tests.
#
# Usage: bash integration/lab/backup-tls.sh        (as root, BEFORE start-daemons.sh: libvirtd reads qemu.conf at start)
#
# Once: makes a throwaway CA (its key in /etc/pki/virtbackup-lab-ca, 0700), a server certificate for 127.0.0.1 and
# localhost in /etc/pki/libvirt-backup (ca-cert.pem, server-cert.pem, server-key.pem: QEMU's tls-creds-x509 server
# layout) and a client certificate in /etc/pki/virtbackup-client (ca-cert.pem, client-cert.pem, client-key.pem: what
# --nbd-tls-dir reads). Sets backup_tls_x509_cert_dir in /etc/libvirt/qemu.conf only when it is not set, and then
# restarts a running libvirtd (integration/lab/restart-libvirtd.sh) so that it reads it. Idempotent.
set -euo pipefail

CA_DIR=/etc/pki/virtbackup-lab-ca
SERVER_DIR=/etc/pki/libvirt-backup
CLIENT_DIR=/etc/pki/virtbackup-client
QEMU_CONF=/etc/libvirt/qemu.conf

if [[ $(id -u) -ne 0 ]]; then
  echo "backup-tls.sh: must run as root" >&2
  exit 1
fi
command -v openssl >/dev/null || apt-get install -y -q openssl >/dev/null

if [[ ! -s $SERVER_DIR/server-cert.pem || ! -s $CLIENT_DIR/client-cert.pem || ! -s $CA_DIR/ca-key.pem ]]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  install -d -m 0700 "$CA_DIR"
  install -d -m 0755 "$SERVER_DIR" "$CLIENT_DIR"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj "/CN=VirtBackup lab backup CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$CA_DIR/ca-key.pem" -out "$CA_DIR/ca-cert.pem" 2>/dev/null
  leaf() { # leaf NAME CN EXTENDED_KEY_USAGE [SAN]
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=$2" \
      -keyout "$work/$1-key.pem" -out "$work/$1.csr" 2>/dev/null
    {
      echo "basicConstraints=critical,CA:FALSE"
      echo "keyUsage=critical,digitalSignature,keyEncipherment"
      echo "extendedKeyUsage=$3"
      [[ -n ${4:-} ]] && echo "subjectAltName=$4"
    } >"$work/$1.ext"
    openssl x509 -req -in "$work/$1.csr" -CA "$CA_DIR/ca-cert.pem" -CAkey "$CA_DIR/ca-key.pem" -CAcreateserial \
      -days 3650 -extfile "$work/$1.ext" -out "$work/$1-cert.pem" 2>/dev/null
  }
  leaf server 127.0.0.1 serverAuth "IP:127.0.0.1,DNS:localhost"
  leaf client "virtbackup lab client" clientAuth
  install -m 0644 "$CA_DIR/ca-cert.pem" "$SERVER_DIR/ca-cert.pem"
  install -m 0644 "$work/server-cert.pem" "$SERVER_DIR/server-cert.pem"
  # QEMU (the qemu.conf user, libvirt-qemu:kvm on Debian) reads the server key itself.
  install -m 0640 -g "$(id -gn libvirt-qemu 2>/dev/null || echo root)" "$work/server-key.pem" "$SERVER_DIR/server-key.pem"
  install -m 0644 "$CA_DIR/ca-cert.pem" "$CLIENT_DIR/ca-cert.pem"
  install -m 0644 "$work/client-cert.pem" "$CLIENT_DIR/client-cert.pem"
  install -m 0600 "$work/client-key.pem" "$CLIENT_DIR/client-key.pem"
  echo "backup-tls.sh: made the lab backup CA, $SERVER_DIR and $CLIENT_DIR"
fi

if grep -Eq '^[[:space:]]*backup_tls_x509_cert_dir[[:space:]]*=' "$QEMU_CONF"; then
  exit 0
fi
printf '\n# integration/lab/backup-tls.sh: TLS for backup jobs with <server tls="yes">\nbackup_tls_x509_cert_dir = "%s"\n' "$SERVER_DIR" >>"$QEMU_CONF"
echo "backup-tls.sh: set backup_tls_x509_cert_dir = \"$SERVER_DIR\" in $QEMU_CONF"
if [[ -s /run/libvirtd.pid && -e /proc/$(<"/run/libvirtd.pid") ]]; then
  echo "backup-tls.sh: libvirtd is running: restarting it so that it reads the new setting"
  bash "$(dirname "${BASH_SOURCE[0]}")/restart-libvirtd.sh"
fi
