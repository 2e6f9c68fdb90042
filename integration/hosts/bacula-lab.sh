#!/usr/bin/env bash
# bacula-lab.sh: a complete private Bacula 9.6 on loopback for testing the virtbackup bpipe glue:
# director, storage daemon (File device), file daemon (bpipe plugin), SQLite catalog, console.
#
# Usage (as root, after integration/hosts/install.sh):
#   bacula-lab.sh up                     create the lab if needed, start what is not running, wait
#                                        until the director answers `status dir`
#   bacula-lab.sh down [--purge]         stop the daemons (--purge: also delete the lab directory)
#   bacula-lab.sh define-job JOB PLUGIN [CLIENT_AFTER_CMD]
#       define (or redefine) backup job JOB whose FileSet is `Plugin = "PLUGIN"`, e.g.
#         'bpipe:/@virtbackup/vm1.tar:/usr/bin/virtbackup backup --domain vm1:/usr/bin/virtbackup restore --target-root %w'
#       or a Director-side generator '|/path/virtbackup-bacula-plugin vm1 %l %i'; CLIENT_AFTER_CMD
#       becomes a RunScript { RunsWhen = After; RunsOnClient = yes; FailJobOnError = yes } (it may
#       use %i, the JobId). No double quotes anywhere. Reloads the director.
#   bacula-lab.sh define-file NAME FILE   add (or replace) director resources from FILE, e.g. an
#                                         adapted contrib/bacula/virtbackup-dir.conf; reloads
#   bacula-lab.sh run-backup JOB LEVEL    run JOB at LEVEL (Full|Incremental|Differential), wait
#   bacula-lab.sh run-restore JOBID WHERE restore everything of backup JOBID with where=WHERE
#                                         (replace=always), wait
#       both print one line: "JobId=N JobStatus=C JobErrors=N Level=L" (C: T ok, E/f error, A cancel)
#   bacula-lab.sh joblog JOBID            the job's messages from the catalog
#   bacula-lab.sh prune-volumes JOBID     Bacula's own `prune volume=V yes` on each volume job JOBID was
#                                         written to (prunes the jobs on it whose retention expired)
#   bacula-lab.sh console                 bconsole on the lab (commands on stdin)
# Environment: VBT_BACULA_DIR (default /var/tmp/vbt-bacula), VBT_BACULA_PORT_BASE (default 19101:
# director 19101, file daemon 19102, storage daemon 19103). Everything lives in the lab directory:
# configs (*.conf, jobs/), work/ (catalog work/bacula.db, state), run/ (pids), storage/ (volumes),
# log/ (bacula.log: all job messages; *.out: daemon output).
set -euo pipefail

LAB=${VBT_BACULA_DIR:-/var/tmp/vbt-bacula}
BASE=${VBT_BACULA_PORT_BASE:-19101}
DIR_PORT=$BASE FD_PORT=$((BASE + 1)) SD_PORT=$((BASE + 2))
DAEMONS=(bacula-sd bacula-fd bacula-dir)

die() { echo "bacula-lab: $*" >&2; exit 1; }
console() { bconsole -c "$LAB/bconsole.conf" -n; }

write_configs() {
  mkdir -p "$LAB"/{work,run,storage,log,jobs}
  local pw_dir pw_fd pw_sd
  pw_dir=$(head -c 24 /dev/urandom | base64 | tr -d '/+=') pw_fd=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  pw_sd=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
  cat > "$LAB/bacula-dir.conf" <<EOF
Director {
  Name = vbt-dir
  DIRport = $DIR_PORT
  DirAddress = 127.0.0.1
  QueryFile = "/etc/bacula/scripts/query.sql"
  WorkingDirectory = "$LAB/work"
  PidDirectory = "$LAB/run"
  Maximum Concurrent Jobs = 4
  Password = "$pw_dir"
  Messages = Daemon
}
Catalog {
  Name = VbtCatalog
  dbname = "bacula"; dbuser = ""; dbpassword = ""
}
Client {
  Name = vbt-fd
  Address = 127.0.0.1
  FDPort = $FD_PORT
  Catalog = VbtCatalog
  Password = "$pw_fd"
  AutoPrune = no
}
Storage {
  Name = VbtStorage
  Address = 127.0.0.1
  SDPort = $SD_PORT
  Password = "$pw_sd"
  Device = VbtFileDevice
  Media Type = VbtFile
}
Pool {
  Name = VbtPool
  Pool Type = Backup
  Label Format = "vbt-"
  Maximum Volume Bytes = 1G
  AutoPrune = no
  Recycle = no
}
Messages {
  Name = Standard
  console = all, !skipped, !saved
  append = "$LAB/log/bacula.log" = all, !skipped
  catalog = all, !skipped
}
Messages {
  Name = Daemon
  console = all, !skipped, !saved
  append = "$LAB/log/bacula.log" = all, !skipped
}
JobDefs {
  Name = vbt-defs
  Type = Backup
  Level = Full
  Client = vbt-fd
  Storage = VbtStorage
  Pool = VbtPool
  Messages = Standard
  Write Bootstrap = "$LAB/work/%n.bsr"
}
FileSet {
  Name = vbt-restore-fs
  Include {
    File = /nonexistent
  }
}
Job {
  Name = vbt-restore
  Type = Restore
  Client = vbt-fd
  FileSet = vbt-restore-fs
  Storage = VbtStorage
  Pool = VbtPool
  Messages = Standard
  Where = "$LAB/restores"
}
@|"sh -c 'cat $LAB/jobs/*.conf 2>/dev/null || true'"
EOF
  cat > "$LAB/bacula-fd.conf" <<EOF
Director {
  Name = vbt-dir
  Password = "$pw_fd"
}
FileDaemon {
  Name = vbt-fd
  FDport = $FD_PORT
  FDAddress = 127.0.0.1
  WorkingDirectory = "$LAB/work"
  Pid Directory = "$LAB/run"
  Plugin Directory = /usr/lib/bacula
  Maximum Concurrent Jobs = 4
}
Messages {
  Name = Standard
  director = vbt-dir = all, !skipped, !restored
}
EOF
  cat > "$LAB/bacula-sd.conf" <<EOF
Storage {
  Name = vbt-sd
  SDPort = $SD_PORT
  SDAddress = 127.0.0.1
  WorkingDirectory = "$LAB/work"
  Pid Directory = "$LAB/run"
  Maximum Concurrent Jobs = 4
}
Director {
  Name = vbt-dir
  Password = "$pw_sd"
}
Device {
  Name = VbtFileDevice
  Media Type = VbtFile
  Archive Device = "$LAB/storage"
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
  Maximum Concurrent Jobs = 4
}
Messages {
  Name = Standard
  director = vbt-dir = all
}
EOF
  cat > "$LAB/bconsole.conf" <<EOF
Director {
  Name = vbt-dir
  DIRport = $DIR_PORT
  Address = 127.0.0.1
  Password = "$pw_dir"
}
EOF
  chmod 600 "$LAB"/*.conf
}

make_catalog() {
  [[ -s $LAB/work/bacula.db ]] && return 0
  sed -e "s|^cd /var/lib/bacula|cd '$LAB/work'|" -e 's|XXX_DBNAME_XXX|bacula|' \
    /usr/share/bacula-director/make_sqlite3_tables > "$LAB/work/make_tables.sh"
  sh "$LAB/work/make_tables.sh" > /dev/null
  [[ -s $LAB/work/bacula.db ]] || die "could not create the catalog $LAB/work/bacula.db"
}

pid_of() { # pid_of DAEMON: its pid when it runs with this lab's config, else nothing
  local port pidfile pid
  case $1 in bacula-dir) port=$DIR_PORT ;; bacula-fd) port=$FD_PORT ;; bacula-sd) port=$SD_PORT ;; esac
  pidfile=$LAB/run/$1.$port.pid
  [[ -f $pidfile ]] || return 0
  pid=$(<"$pidfile")
  if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -qF -- "$LAB/$1.conf"; then
    echo "$pid"
  fi
}

up() {
  command -v bacula-dir > /dev/null || die "Bacula is not installed: run integration/hosts/install.sh"
  [[ -f $LAB/bacula-dir.conf ]] || write_configs
  make_catalog
  local daemon
  for daemon in "${DAEMONS[@]}"; do
    [[ -n $(pid_of "$daemon") ]] && continue
    "$daemon" -t -c "$LAB/$daemon.conf" || die "$daemon rejects $LAB/$daemon.conf"
    rm -f "$LAB/run/$daemon".*.pid
    setsid "$daemon" -f -c "$LAB/$daemon.conf" < /dev/null >> "$LAB/log/$daemon.out" 2>&1 &
  done
  for _ in $(seq 1 100); do
    if console <<< 'status dir' 2> /dev/null | grep -q 'vbt-dir'; then
      for daemon in "${DAEMONS[@]}"; do [[ -n $(pid_of "$daemon") ]] || continue 2; done
      echo "bacula-lab: up in $LAB (director 127.0.0.1:$DIR_PORT)"
      return 0
    fi
    sleep 0.2
  done
  tail -n 20 "$LAB"/log/*.out >&2 || true
  die "the director did not answer within 20 s"
}

down() {
  local daemon pid
  for daemon in "${DAEMONS[@]}"; do
    pid=$(pid_of "$daemon")
    [[ -n $pid ]] || continue
    kill "$pid"
    for _ in $(seq 1 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
    [[ -d /proc/$pid ]] && kill -9 "$pid"
  done
  echo "bacula-lab: down"
  if [[ ${1:-} == --purge ]]; then rm -rf "$LAB"; echo "bacula-lab: removed $LAB"; fi
}

define_job() {
  local job=${1:?job name} plugin=${2:?plugin line} after=${3:-}
  [[ $job =~ ^[A-Za-z0-9._-]+$ ]] || die "bad job name '$job'"
  [[ $plugin$after != *'"'* ]] || die "no double quotes in the plugin line or the script"
  {
    printf 'FileSet {\n  Name = %s-fs\n  Include {\n    Plugin = "%s"\n  }\n}\n' "$job" "$plugin"
    printf 'Job {\n  Name = %s\n  JobDefs = vbt-defs\n  FileSet = %s-fs\n' "$job" "$job"
    if [[ -n $after ]]; then
      printf '  RunScript {\n    RunsWhen = After\n    RunsOnClient = yes\n    FailJobOnError = yes\n'
      printf '    Command = "%s"\n  }\n' "$after"
    fi
    printf '}\n'
  } > "$LAB/jobs/$job.conf"
  bacula-dir -t -c "$LAB/bacula-dir.conf" || { rm -f "$LAB/jobs/$job.conf"; die "the director rejects job $job"; }
  console <<< 'reload' > /dev/null
}

define_file() {
  local name=${1:?name} file=${2:?file}
  [[ $name =~ ^[A-Za-z0-9._-]+$ ]] || die "bad name '$name'"
  cp "$file" "$LAB/jobs/$name.conf"
  bacula-dir -t -c "$LAB/bacula-dir.conf" || { rm -f "$LAB/jobs/$name.conf"; die "the director rejects $file"; }
  console <<< 'reload' > /dev/null
}

wait_and_report() { # wait_and_report OUTPUT-OF-RUN: wait for the queued job, print its status line
  local id
  id=$(sed -n 's/.*Job queued\. JobId=\([0-9]*\).*/\1/p' <<< "$1")
  [[ -n $id ]] || { echo "$1" >&2; die "the job was not queued"; }
  console <<< "wait jobid=$id" > /dev/null
  sqlite3 "$LAB/work/bacula.db" \
    "SELECT 'JobId=' || JobId || ' JobStatus=' || JobStatus || ' JobErrors=' || JobErrors || ' Level=' || Level FROM Job WHERE JobId = $id"
}

run_backup() {
  local job=${1:?job} level=${2:?level}
  wait_and_report "$(console <<< "run job=$job level=$level yes")"
}

run_restore() {
  local jobid=${1:?backup jobid} where=${2:?where}
  wait_and_report "$(console <<< "restore jobid=$jobid client=vbt-fd restorejob=vbt-restore where=$where replace=always all done yes")"
}

joblog() {
  sqlite3 "$LAB/work/bacula.db" "SELECT rtrim(LogText, char(10, 92)) FROM Log WHERE JobId = ${1:?jobid} ORDER BY LogId"
}

prune_volumes() {
  local jobid=${1:?jobid} volumes volume
  volumes=$(sqlite3 "$LAB/work/bacula.db" \
    "SELECT DISTINCT m.VolumeName FROM JobMedia j JOIN Media m ON m.MediaId = j.MediaId WHERE j.JobId = $jobid")
  [[ -n $volumes ]] || die "job $jobid has no volume in the catalog"
  for volume in $volumes; do
    console <<< "prune volume=$volume yes"
  done
}

cmd=${1:-}
shift || true
case $cmd in
  up) up ;;
  down) down "$@" ;;
  define-job) define_job "$@" ;;
  define-file) define_file "$@" ;;
  run-backup) run_backup "$@" ;;
  run-restore) run_restore "$@" ;;
  joblog) joblog "$@" ;;
  prune-volumes) prune_volumes "$@" ;;
  console) console ;;
  *) sed -n '5,27s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
