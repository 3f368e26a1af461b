#!/usr/bin/env bash
# Shared helpers for the lab scripts. Source it; it defines functions only.
# Paths: LAB_DIR (deploy/lab), LAB_STATE (.state), LAB_CACHE (.cache).

LAB_DIR=${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
LAB_STATE=${LAB_STATE:-$LAB_DIR/.state}
LAB_CACHE=${LAB_CACHE:-$LAB_DIR/.cache}
LAB_LIB=${LAB_LIB:-$LAB_CACHE/lib}
mkdir -p "$LAB_STATE/pids" "$LAB_STATE/logs" "$LAB_STATE/data" "$LAB_CACHE"

lab_log() { printf 'lab: %s\n' "$*" >&2; }
lab_die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

# lab_java_home prints a JDK 17 home (Cassandra 5 refuses newer JDKs).
lab_java_home() {
  local c
  for c in "${LAB_JAVA_HOME:-}" /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-* /usr/lib/jvm/temurin-17-*; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] || continue
    if "$c/bin/java" -version 2>&1 | grep -q 'version "17\.'; then echo "$c"; return 0; fi
  done
  return 1
}

pid_file() { echo "$LAB_STATE/pids/$1.pid"; }

# proc_alive NAME: true when NAME's pid file names a live process.
proc_alive() {
  local f; f=$(pid_file "$1")
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

# start_bg NAME LOGFILE CMD...: start CMD detached (own session), record pid.
# fd 9 (lab.sh's flock on .state/lab.lock) is closed for CMD: a server that
# inherited it would hold the lock for its whole life.
start_bg() {
  local name=$1 log=$2; shift 2
  if proc_alive "$name"; then lab_log "$name already running (pid $(cat "$(pid_file "$name")"))"; return 0; fi
  setsid "$@" >>"$log" 2>&1 < /dev/null 9>&- &
  echo $! > "$(pid_file "$name")"
  lab_log "started $name (pid $!), log $log"
}

# stop_proc NAME [TIMEOUT]: SIGCONT (in case paused), SIGTERM, then SIGKILL.
stop_proc() {
  local name=$1 t=${2:-30} f pid i
  f=$(pid_file "$name"); [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < t * 10; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { lab_log "$name did not stop in ${t}s, SIGKILL"; kill -KILL "$pid" 2>/dev/null; }
  fi
  rm -f "$f"
}

# wait_port HOST PORT TIMEOUT_SECONDS: wait until a TCP port accepts.
wait_port() {
  local host=$1 port=$2 t=${3:-60} i
  for ((i = 0; i < t * 5; i++)); do
    (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
    sleep 0.2
  done
  return 1
}

# proc_state NAME: prints up, paused (SIGSTOPped) or down.
proc_state() {
  local pid
  if proc_alive "$1"; then
    pid=$(cat "$(pid_file "$1")")
    if [ "$(ps -o stat= -p "$pid" | cut -c1)" = T ]; then echo paused; else echo up; fi
  else
    echo down
  fi
}

# proc_rss_kib NAME: resident set size of NAME in KiB (0 when not running).
proc_rss_kib() {
  local r=0
  proc_alive "$1" && r=$(ps -o rss= -p "$(cat "$(pid_file "$1")")" | tr -d ' ')
  echo "${r:-0}"
}
