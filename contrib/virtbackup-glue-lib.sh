# shellcheck shell=bash
# virtbackup-glue-lib.sh: what the restic and borg wrappers share, sourced by them (not run).
# Installed next to them (install -m 0644 contrib/virtbackup-glue-lib.sh /usr/local/sbin/), or as
# /usr/local/lib/virtbackup/virtbackup-glue-lib.sh; in this repository it sits in contrib/, one level
# above contrib/restic and contrib/borg. Each wrapper sets VB_PROG (its name, for messages) first.
#
# 1. The chain state of a backup wrapper (vb_state_init, vb_choose_level, vb_stored): an incremental
#    is only useful when every earlier stream of its chain is stored. Per domain, chain (--chain) and
#    repository the wrapper keeps the last stored backup (STATE/DOMAIN.REPOHASH.last) and a "pending" marker
#    (STATE/DOMAIN.REPOHASH.pending) written before each full/inc/diff run and removed only once the
#    stream is stored and virtbackup succeeded; so after any failure the next auto/inc run is a full.
# 2. Chains from a list of stored backups (vb_chain_upto, vb_chain_plan), one per line, oldest first:
#    a chain is a full, then every inc after it up to the next full; a level=copy backup stands alone
#    and nothing depends on it. (level=diff, a differential, needs its full only; an inc after it
#    needs the diff, not the incs before it.)

log() { echo "$VB_PROG: $*" >&2; }

# vb_check_domain NAME: refuses a name that could escape the state directory.
vb_check_domain() {
  [[ $1 != */* && $1 != .* && -n $1 ]] || { log "bad domain name '$1'"; exit 2; }
}

# vb_check_chain NAME: an empty NAME is the unnamed chain; any other must follow virtbackup's rule for
# chain names (it goes into restic paths and tags, borg archive names and state file names).
vb_check_chain() {
  [[ -z $1 || $1 =~ ^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$ ]] ||
    { log "bad chain name '$1' (1 to 32 of A-Z a-z 0-9 _ -, starting with a letter or digit)"; exit 2; }
}

# vb_stream_name DOMAIN [CHAIN]: the name a wrapper stores one chain's backups under: DOMAIN for the
# unnamed chain (as before named chains existed), DOMAIN~CHAIN for a named one (no chain name holds an
# @, and no domain name the borg wrappers accept holds a ~). restic stores the stream as /NAME.tar (so
# its default grouping by paths, and the --path filter, keep chains apart), borg names the archives
# NAME@LEVEL@TIME (found with the glob NAME@*): each chain is restored and pruned on its own.
vb_stream_name() { printf '%s' "$1${2:+~$2}"; }

# vb_state_init STATE_DIR DOMAIN REPOSITORY [CHAIN]: sets vb_last and vb_pending (the state files).
vb_state_init() {
  local key
  mkdir -p "$1" && chmod 0700 "$1"
  # A named chain's key hashes the chain with the repository: no name of either can make two keys equal.
  key=$2.$( { printf '%s' "$3"; [[ -z ${4:-} ]] || printf '\n%s' "$4"; } | sha256sum | cut -c1-16)
  vb_last=$1/$key.last vb_pending=$1/$key.pending
}

# vb_choose_level LEVEL DOMAIN: sets vb_run_level (full, inc, diff or copy) and, unless copy, sets the
# pending marker.
vb_choose_level() {
  vb_run_level=$1
  if [[ $1 == auto || $1 == inc || $1 == diff ]]; then
    if [[ -f $vb_last && ! -f $vb_pending ]]; then
      vb_run_level=${1/auto/inc}
    else
      vb_run_level=full
      if [[ -f $vb_pending || $1 != auto ]]; then
        log "the previous backup of '$2' was not stored in this repository: taking a full"
      fi
    fi
  fi
  [[ $vb_run_level == copy ]] || : > "$vb_pending"
}

# vb_stored ID REPOSITORY: records a stored, complete full/inc backup and clears the pending marker.
vb_stored() {
  [[ $vb_run_level != copy ]] || return 0
  printf 'snapshot=%s\nlevel=%s\nrepository=%s\ntime=%s\n' "$1" "$vb_run_level" "$2" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$vb_last.tmp"
  mv "$vb_last.tmp" "$vb_last"
  rm -f "$vb_pending"
}

# vb_chain_upto [ID]: stdin "ID<TAB>LEVEL<TAB>TIME" lines, oldest first; prints the lines to restore,
# in order, to get the state as of ID (a unique prefix; default the newest): a copy alone, else the
# full before it and every inc in between. Prints nothing when no full starts that chain; exits 1 when
# no line matches ID.
vb_chain_upto() {
  awk -F'\t' -v s="${1:-}" '
    { id[NR] = $1; level[NR] = $2; line[NR] = $0; if (s != "" && index($1, s) == 1) end = NR }
    END {
      if (s == "") end = NR
      if (end == 0) exit 1
      if (level[end] == "copy") { print line[end]; exit }
      if (level[end] != "full" && level[end] != "inc" && level[end] != "diff") exit 0
      need_inc = (level[end] == "inc"); n = 0; pick[++n] = end; start = 0
      if (level[end] == "full") start = end
      for (i = end - 1; i >= 1 && !start; i--) {
        if (level[i] == "full") { start = i; pick[++n] = i }
        else if (level[i] == "diff" && need_inc) { need_inc = 0; pick[++n] = i }
        else if (level[i] == "inc" && need_inc) pick[++n] = i
      }
      if (!start) exit 0
      for (i = n; i >= 1; i--) print line[pick[i]]
    }'
}

# vb_chain_plan: stdin "ID<TAB>NAME<TAB>TIME<TAB>LEVEL<TAB>KEPT" lines, oldest first, KEPT 1 when the
# host's own retention policy keeps that backup; prints "ID<TAB>NAME<TAB>TIME<TAB>LEVEL<TAB>ACTION<TAB>
# REASON" per line, ACTION keep or forget. Kept: what the policy keeps ("kept by policy"), and every
# backup one of those depends on ("needed by NAME", the newest kept backup that needs it). Left alone
# (kept) whatever the policy says: an inc or diff with no full before it (its chain is broken already:
# forgetting it cannot repair it, and nothing here decides it is worthless), and a backup without a
# known level. The rest: "forgotten".
vb_chain_plan() {
  awk -F'\t' -v OFS='\t' '
    { id[NR] = $1; name[NR] = $2; time[NR] = $3; level[NR] = $4; why[NR] = ($5 == 1 ? "kept by policy" : "") }
    function need(j, i) { if (why[j] == "") why[j] = "needed by " name[i] }
    END {
      seen_full = 0
      for (i = 1; i <= NR; i++) {
        if (level[i] == "full") seen_full = 1
        else if ((level[i] == "inc" || level[i] == "diff") && !seen_full) why[i] = "left alone: no full before it (chain already broken)"
        else if (level[i] != "inc" && level[i] != "diff" && level[i] != "copy") why[i] = "left alone: unknown level"
      }
      for (i = NR; i >= 1; i--) {
        if (why[i] == "" || (level[i] != "inc" && level[i] != "diff")) continue
        need_inc = (level[i] == "inc")
        for (j = i - 1; j >= 1; j--) {
          if (level[j] == "full") { need(j, i); break }
          if (level[j] == "diff" && need_inc) { need(j, i); need_inc = 0 }
          else if (level[j] == "inc" && need_inc) need(j, i)
        }
      }
      for (i = 1; i <= NR; i++) print id[i], name[i], time[i], level[i], (why[i] == "" ? "forget" : "keep"), (why[i] == "" ? "forgotten" : why[i])
    }'
}

# vb_print_plan: the plan (vb_chain_plan's output) as the report on stdout, "NAME TIME LEVEL REASON".
vb_print_plan() {
  awk -F'\t' '{ print $2, $3, $4, $6 }'
}

# vb_restic_rows: stdin `restic snapshots --json`; prints "ID<TAB>SHORT_ID<TAB>TIME<TAB>LEVEL" per
# snapshot, oldest first by the instant (restic writes local times with their offset, and a
# fraction of up to 9 digits: a plain string sort would misorder them across an offset change).
vb_restic_rows() {
  jq -r '
    def key: capture("^(?<s>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?<f>[.][0-9]+)?(?<z>Z|[+-][0-9]{2}:[0-9]{2})$")
      | [((.s + "Z") | fromdateiso8601)
         - (if .z == "Z" then 0 else (if .z[0:1] == "-" then -1 else 1 end) * ((.z[1:3] | tonumber) * 3600 + (.z[4:6] | tonumber) * 60) end),
         (((.f // ".") [1:] + "000000000")[0:9] | tonumber)];
    sort_by([(.time | key), .time])[]
    | [.id, .short_id // .id[0:8], .time, ((.tags // []) | map(select(startswith("level=")))[0] // "level=" | ltrimstr("level="))]
    | @tsv'
}

# vb_borg_check_domain NAME: borg archives are named DOMAIN@LEVEL@TIME and found with the glob
# DOMAIN@*: a name with @, a glob character, a space or a slash could match another domain's archives.
vb_borg_check_domain() {
  [[ $1 =~ ^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$ ]] ||
    { log "domain name '$1' is not usable in a borg archive name (letters, digits, . _ + - only)"; exit 2; }
}

# vb_borg_rows: stdin `borg list --json`; prints "NAME<TAB>ID<TAB>TIME<TAB>LEVEL" per archive named
# DOMAIN@LEVEL@TIME, oldest first by borg's archive time (one fixed format, so a string sort is
# right), ties broken by the UTC time in the name.
vb_borg_rows() {
  jq -r '.archives | map(. + {parts: (.name | split("@"))}) | map(select(.parts | length == 3))
    | sort_by([.time, .parts[2]])[] | [.name, .id, .time, .parts[1]] | @tsv'
}
