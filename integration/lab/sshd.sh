#!/usr/bin/env bash
# sshd.sh: an OpenSSH server on the loopback for the VirtBackup lab, so the remote-host layer (and
# libvirt's qemu+ssh transport) can be tested against "another hypervisor" that is this machine.
#
# Usage: bash integration/lab/sshd.sh [--port PORT] [--user NAME]
#   --port PORT   listen on 127.0.0.1:PORT (default 22)
#   --user NAME   also create the unprivileged user NAME (home /home/NAME, shell /bin/sh) whose key is
#                 /root/.ssh/virtbackup_test_NAME_ed25519; the tests use --user vbtssh
#
# What it does, each step only when needed (idempotent; a second run changes nothing and is fast):
#   - installs openssh-server (and the client) when /usr/sbin/sshd is missing
#   - generates missing host keys (ssh-keygen -A) and creates /run/sshd (no systemd here)
#   - starts /usr/sbin/sshd listening on 127.0.0.1:PORT only, unless something already answers there
#     (pid file /run/virtbackup-sshd-PORT.pid); the stock sshd_config applies: PermitRootLogin
#     prohibit-password (keys only), stream-local forwarding allowed; sessions get SHLVL=1, so root's
#     ~/.bashrc is not run for each remote command (an sshd started without it is restarted)
#   - generates the client key /root/.ssh/virtbackup_test_ed25519 and authorizes it for root
#   - records the server's host keys for 127.0.0.1 (or [127.0.0.1]:PORT) in /root/.ssh/known_hosts
# Afterwards these work without prompts:
#   ssh -i /root/.ssh/virtbackup_test_ed25519 root@127.0.0.1 true
#   virsh -c 'qemu+ssh://root@127.0.0.1/system?keyfile=/root/.ssh/virtbackup_test_ed25519' version
# Prints nothing on success unless it had to change something. Run as root.
set -euo pipefail

PORT=22
TEST_USER=
while [[ $# -gt 0 ]]; do
  case $1 in
    --port) PORT=${2:?--port needs a value}; shift 2 ;;
    --user) TEST_USER=${2:?--user needs a value}; shift 2 ;;
    *) echo "sshd.sh: unknown argument '$1' (usage: sshd.sh [--port PORT] [--user NAME])" >&2; exit 2 ;;
  esac
done
[[ $PORT =~ ^[0-9]+$ ]] || { echo "sshd.sh: bad port '$PORT'" >&2; exit 2; }
[[ -z $TEST_USER || $TEST_USER =~ ^[a-z_][a-z0-9_-]*$ ]] || { echo "sshd.sh: bad user name '$TEST_USER'" >&2; exit 2; }

if [[ $(id -u) -ne 0 ]]; then
  echo "sshd.sh: must run as root" >&2
  exit 1
fi

KEY=/root/.ssh/virtbackup_test_ed25519
PIDFILE=/run/virtbackup-sshd-$PORT.pid
if [[ $PORT == 22 ]]; then KNOWN_NAME=127.0.0.1; else KNOWN_NAME="[127.0.0.1]:$PORT"; fi

# Several test processes may run this at once: one at a time.
exec 9>/run/virtbackup-sshd.lock
flock 9

# 1. Packages.
if [[ ! -x /usr/sbin/sshd || ! -x /usr/bin/ssh ]]; then
  echo "sshd.sh: installing openssh-server" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends openssh-server openssh-client >/dev/null; then
    apt-get update >/dev/null
    apt-get install -y --no-install-recommends openssh-server openssh-client >/dev/null
  fi
fi

# 2. Host keys and the privilege-separation directory.
ssh-keygen -A >/dev/null
mkdir -p /run/sshd
chmod 0755 /run/sshd

# 3. The daemon: "running" means something speaks SSH on 127.0.0.1:PORT.
answers() { timeout 5 ssh-keyscan -T 2 -p "$PORT" 127.0.0.1 2>/dev/null | grep -q .; }
# SetEnv=SHLVL=1: bash sources ~/.bashrc for a command sshd runs only at shell level 1, and this lab machine's root
# .bashrc runs `pyenv init -` (0.45 s): every remote command virtbackup ran cost half a second, 3-5 s per remote
# backup. The lab measures virtbackup against a host whose shell starts at once, as a hypervisor's does.
OPTIONS=(-o "ListenAddress=127.0.0.1:$PORT" -o "PidFile=$PIDFILE" -o "SetEnv=SHLVL=1")
if answers && [[ -s $PIDFILE ]] && ! tr '\0' ' ' <"/proc/$(<"$PIDFILE")/cmdline" 2>/dev/null | grep -q "SetEnv=SHLVL=1"; then
  echo "sshd.sh: restarting the sshd on 127.0.0.1:$PORT with SetEnv=SHLVL=1 (open connections stay)" >&2
  kill -TERM "$(<"$PIDFILE")"
  for _ in $(seq 50); do
    answers || break
    sleep 0.1
  done
fi
if ! answers; then
  echo "sshd.sh: starting sshd on 127.0.0.1:$PORT" >&2
  /usr/sbin/sshd -t
  /usr/sbin/sshd "${OPTIONS[@]}"
  for _ in $(seq 50); do
    answers && break
    sleep 0.1
  done
  answers || { echo "sshd.sh: sshd does not answer on 127.0.0.1:$PORT" >&2; exit 1; }
fi

# 4. Client key for root, authorized for root.
authorize() { # authorize PUBKEY_FILE HOME OWNER
  local pub ssh_dir="$2/.ssh"
  pub=$(cat "$1")
  install -d -m 0700 -o "$3" -g "$(id -gn "$3")" "$ssh_dir"
  touch "$ssh_dir/authorized_keys"
  if ! grep -qxF "$pub" "$ssh_dir/authorized_keys"; then
    printf '%s\n' "$pub" >>"$ssh_dir/authorized_keys"
  fi
  chown "$3:$(id -gn "$3")" "$ssh_dir/authorized_keys"
  chmod 0600 "$ssh_dir/authorized_keys"
}
install -d -m 0700 /root/.ssh
[[ -f $KEY ]] || ssh-keygen -q -t ed25519 -N '' -C virtbackup-test -f "$KEY"
authorize "$KEY.pub" /root root

# 5. An unprivileged user with its own key, for permission tests.
if [[ -n $TEST_USER ]]; then
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/sh "$TEST_USER"
  fi
  # '*' = no password but not locked: sshd refuses even key logins to a locked ('!') account.
  usermod -p '*' "$TEST_USER"
  user_key=/root/.ssh/virtbackup_test_${TEST_USER}_ed25519
  [[ -f $user_key ]] || ssh-keygen -q -t ed25519 -N '' -C "virtbackup-test-$TEST_USER" -f "$user_key"
  authorize "$user_key.pub" "$(getent passwd "$TEST_USER" | cut -d: -f6)" "$TEST_USER"
fi

# 6. known_hosts: the server's current host keys, so StrictHostKeyChecking passes without prompting.
#    Stale entries (host keys regenerated) are replaced.
touch /root/.ssh/known_hosts
chmod 0600 /root/.ssh/known_hosts
scanned=$(ssh-keyscan -p "$PORT" 127.0.0.1 2>/dev/null | sort)
[[ -n $scanned ]] || { echo "sshd.sh: ssh-keyscan got no host keys from 127.0.0.1:$PORT" >&2; exit 1; }
stale=no
while IFS= read -r line; do
  grep -qxF "$line" /root/.ssh/known_hosts || stale=yes
done <<<"$scanned"
if [[ $stale == yes ]]; then
  ssh-keygen -R "$KNOWN_NAME" -f /root/.ssh/known_hosts >/dev/null 2>&1 || true
  rm -f /root/.ssh/known_hosts.old
  printf '%s\n' "$scanned" >>/root/.ssh/known_hosts
fi

# 7. Proof: a key login as root works non-interactively.
if ! out=$(ssh -p "$PORT" -i "$KEY" -o BatchMode=yes -o IdentitiesOnly=yes root@127.0.0.1 true 2>&1); then
  echo "sshd.sh: key login as root@127.0.0.1:$PORT fails: $out" >&2
  exit 1
fi
