#!/usr/bin/env bash
# Two-DC Apache Cassandra 5.0 for the lab, from Maven Central jars on JDK 17:
#   cassandra-east: DC dc-east on 127.0.0.1 (CQL 9042, JMX 7199)
#   cassandra-west: DC dc-west on 127.0.0.2 (CQL 9042, JMX 7299)
# Usage: cassandra.sh up|down|status|start NAME|stop NAME
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib.sh"
CLIB=$LAB_LIB/cassandra
NODES=(cassandra-east cassandra-west)

node_addr()  { case $1 in cassandra-east) echo 127.0.0.1 ;; cassandra-west) echo 127.0.0.2 ;; *) lab_die "unknown node $1" ;; esac; }
node_dc()    { case $1 in cassandra-east) echo dc-east ;; cassandra-west) echo dc-west ;; esac; }
node_jmx()   { case $1 in cassandra-east) echo 7199 ;; cassandra-west) echo 7299 ;; esac; }
node_token() { case $1 in cassandra-east) echo -9223372036854775808 ;; cassandra-west) echo 0 ;; esac; }

ensure_jars() {
  if ! ls "$CLIB"/cassandra-all-*.jar >/dev/null 2>&1; then
    lab_log "fetching Cassandra jars with Maven"
    mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies >&2
  fi
}

# render NAME: write the node's conf dir (cassandra.yaml, rackdc, logback).
render() {
  local n=$1 conf="$LAB_STATE/conf/$1" data="$LAB_STATE/data/$1"
  mkdir -p "$conf" "$data"
  sed -e "s#@ADDR@#$(node_addr "$n")#g" -e "s#@TOKEN@#$(node_token "$n")#g" \
      -e "s#@DATA@#$data#g" -e "s#@SEED@#127.0.0.1#g" -e "s#@NAME@#$n#g" \
      "$HERE/cassandra.yaml.tmpl" > "$conf/cassandra.yaml"
  printf 'dc=%s\nrack=rack1\nprefer_local=true\n' "$(node_dc "$n")" > "$conf/cassandra-rackdc.properties"
  cp "$HERE/logback.xml" "$conf/logback.xml"
}

start_node() {
  local n=$1 java jmx
  java="$(lab_java_home)/bin/java" || lab_die "no JDK 17 found (Cassandra 5 refuses newer JDKs)"
  ensure_jars
  render "$n"
  jmx=$(node_jmx "$n")
  mapfile -t opts < <(grep -v '^\s*#' "$HERE/jvm.options" | grep -v '^\s*$')
  # Close inherited descriptors above 2 first: lab.sh holds its flock on fd 9
  # and a JVM inheriting it keeps the lock, so every later `lab.sh up` hangs.
  ( close_fds; start_bg "$n" "$LAB_STATE/logs/$n.log" "$java" "${opts[@]}" \
    -Dcassandra.jmx.local.port="$jmx" -Dcom.sun.management.jmxremote.rmi.port="$jmx" \
    -Dcassandra.config="file://$LAB_STATE/conf/$n/cassandra.yaml" \
    -Dcassandra.storagedir="$LAB_STATE/data/$n" -Dcassandra.logdir="$LAB_STATE/logs" \
    -Dlogback.configurationFile="$LAB_STATE/conf/$n/logback.xml" \
    -cp "$LAB_STATE/conf/$n:$CLIB/*" org.apache.cassandra.service.CassandraDaemon )
}

# close_fds: close every descriptor above 2 in this subshell (255, bash's own
# script descriptor, is close-on-exec already).
close_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    case $fd in 0|1|2|255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
  done
}

# wait_cql NAME: until the CQL port answers, or fail with the log tail.
wait_cql() {
  local n=$1 i
  for ((i = 0; i < 180; i++)); do
    if ! proc_alive "$n"; then
      tail -20 "$LAB_STATE/logs/$n.log" >&2
      lab_die "$n exited during start-up (log: $LAB_STATE/logs/$n.log)"
    fi
    wait_port "$(node_addr "$n")" 9042 1 && return 0
  done
  tail -20 "$LAB_STATE/logs/$n.log" >&2
  lab_die "$n: CQL port $(node_addr "$n"):9042 not open after 180s"
}

nodetool() { "$HERE/nodetool.sh" "$@"; }

# wait_normal: until both nodes show UN in nodetool status seen from east.
wait_normal() {
  local i out
  for ((i = 0; i < 120; i++)); do
    out=$(nodetool east status 2>/dev/null || true)
    if [ "$(grep -c '^UN ' <<<"$out")" = 2 ]; then return 0; fi
    sleep 1
  done
  echo "$out" >&2
  lab_die "both Cassandra nodes not UN after 120s"
}

status() {
  local n rc=0
  for n in "${NODES[@]}"; do
    if proc_alive "$n"; then
      local pid st; pid=$(cat "$(pid_file "$n")")
      st=$(ps -o stat= -p "$pid" | cut -c1)
      if [ "$st" = T ]; then echo "$n pid=$pid paused $(node_addr "$n"):9042 $(node_dc "$n")"
      else echo "$n pid=$pid up $(node_addr "$n"):9042 $(node_dc "$n")"; fi
    else
      echo "$n down $(node_addr "$n"):9042 $(node_dc "$n")"; rc=1
    fi
  done
  return $rc
}

case ${1:-} in
  up)
    if proc_alive cassandra-east && proc_alive cassandra-west; then status; exit 0; fi
    start_node cassandra-east
    wait_cql cassandra-east
    start_node cassandra-west
    wait_cql cassandra-west
    wait_normal
    status ;;
  down)  for n in "${NODES[@]}"; do stop_proc "$n" 60; done ;;
  status) status ;;
  start) start_node "${2:?node name}"; wait_cql "$2" ;;
  stop)  stop_proc "${2:?node name}" 60 ;;
  *) echo "usage: $0 up|down|status|start NAME|stop NAME" >&2; exit 2 ;;
esac
