#!/usr/bin/env bash
# The regionsync lab: two regions on loopback, as separate processes.
#   Kafka ×2 (KRaft), Cassandra 5.0 in two DCs, a 3-member etcd cluster,
#   one NATS server with JetStream, and toxiproxy between east's clients and
#   west's servers. MirrorMaker 2 on demand (kafka/mm2.sh).
#   Why one NATS server: two single-server clusters joined by gateways do not
#   start with JetStream ("JetStream cluster requires configured routes or
#   solicited leafnode for the system account"); a JetStream super-cluster
#   needs a routed cluster (3 servers for a quorum) per region.
# Usage: lab.sh up|down|status|env
#        lab.sh start|stop|kill|pause|resume PROC   (fault injection)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/lib.sh"
ROOT=$(cd "$HERE/../.." && pwd)
BIN=$LAB_CACHE/bin
ENV_FILE=$LAB_STATE/lab.env

ETCD_NAMES=(etcd-east etcd-west etcd-witness)
NATS_NAMES=(nats)
ALL=(etcd-east etcd-west etcd-witness nats proxy kafka-east kafka-west cassandra-east cassandra-west mm2)
etcd_client_port() { case $1 in etcd-east) echo 12379 ;; etcd-west) echo 22379 ;; etcd-witness) echo 31379 ;; esac; }
etcd_peer_port()   { case $1 in etcd-east) echo 12380 ;; etcd-west) echo 22380 ;; etcd-witness) echo 31380 ;; esac; }
nats_port()        { echo 14222; }
# Every lab port is below 32768: Linux hands out local ports for outgoing
# connections from 32768-60999, so a listener there can find its port taken
# (a CI run failed on 34222 that way).
# toxiproxy listeners for west's servers as east's clients see them
#   name            listen            upstream
#   kafka-west      127.0.0.1:30092   127.0.0.1:29092
#   cassandra-west  127.0.0.1:30042   127.0.0.2:9042
#   etcd-west       127.0.0.1:30379   127.0.0.1:22379
#   nats-west       127.0.0.1:30222   127.0.0.1:14222 (the one NATS server, seen across the link)
PROXIES="kafka-west=127.0.0.1:30092>127.0.0.1:29092,cassandra-west=127.0.0.1:30042>127.0.0.2:9042,etcd-west=127.0.0.1:30379>127.0.0.1:22379,nats-west=127.0.0.1:30222>127.0.0.1:14222"

ensure_java() {
  if ! lab_java_home >/dev/null; then
    lab_log "no JDK 17 found: installing openjdk-17-jdk-headless"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless) >&2 \
      || lab_die "could not install JDK 17 (Cassandra 5 needs it)"
  fi
}

ensure_jars() {
  if ls "$LAB_LIB"/kafka/kafka_2.13-*.jar "$LAB_LIB"/cassandra/cassandra-all-*.jar >/dev/null 2>&1; then return; fi
  lab_log "fetching the lab's jars from Maven Central (deploy/lab/pom.xml)"
  JAVA_HOME=$(lab_java_home) mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies >&2 \
    || lab_die "mvn dependency:copy-dependencies failed"
}

build_helpers() {
  mkdir -p "$BIN"
  (cd "$ROOT" && go build -o "$BIN/" ./deploy/lab/cmd/labetcd ./deploy/lab/cmd/labnats ./deploy/lab/cmd/labproxy) \
    || lab_die "go build of the lab helpers failed"
}

start_etcd() {
  local n=$1 cluster="" m
  for m in "${ETCD_NAMES[@]}"; do cluster+="${cluster:+,}$m=http://127.0.0.1:$(etcd_peer_port "$m")"; done
  start_bg "$n" "$LAB_STATE/logs/$n.log" "$BIN/labetcd" -name "$n" -data-dir "$LAB_STATE/data/$n" \
    -client-url "http://127.0.0.1:$(etcd_client_port "$n")" -peer-url "http://127.0.0.1:$(etcd_peer_port "$n")" \
    -initial-cluster "$cluster"
}

start_nats() {
  local n=$1
  start_bg "$n" "$LAB_STATE/logs/$n.log" "$BIN/labnats" -name "$n" -port "$(nats_port "$n")" \
    -store-dir "$LAB_STATE/data/$n"
}

start_proxy() { start_bg proxy "$LAB_STATE/logs/proxy.log" "$BIN/labproxy" -api 127.0.0.1:18474 -proxies "$PROXIES"; }

# start_one PROC: (re)start a single process with its usual arguments.
start_one() {
  case $1 in
    etcd-*) start_etcd "$1"; wait_port 127.0.0.1 "$(etcd_client_port "$1")" 30 || lab_die "$1 did not open its client port" ;;
    nats) start_nats "$1"; wait_port 127.0.0.1 "$(nats_port "$1")" 30 || lab_die "$1 did not open its client port" ;;
    proxy) start_proxy; wait_port 127.0.0.1 18474 30 || lab_die "proxy API did not open" ;;
    kafka-*) "$HERE/kafka/kafka.sh" start "$1" ;;
    cassandra-*) "$HERE/cassandra/cassandra.sh" start "$1" ;;
    mm2) "$HERE/kafka/mm2.sh" start ;;
    *) lab_die "unknown process '$1' (one of: ${ALL[*]})" ;;
  esac
}

signal_one() {
  local sig=$1 n=$2
  proc_alive "$n" || lab_die "$n is not running"
  kill "-$sig" "$(cat "$(pid_file "$n")")"
  lab_log "sent SIG$sig to $n"
}

# wait_etcd: until a linearizable read works through the v3 HTTP gateway.
wait_etcd() {
  local i
  for ((i = 0; i < 120; i++)); do
    if curl -sf -m 2 -X POST -d '{"key":"aGVhbHRo"}' http://127.0.0.1:12379/v3/kv/range >/dev/null; then return 0; fi
    sleep 0.5
  done
  lab_die "etcd cluster has no quorum after 60s (logs: $LAB_STATE/logs/etcd-*.log)"
}

write_env() {
  cat > "$ENV_FILE" <<EOT
export KAFKA_EAST=127.0.0.1:19092
export KAFKA_WEST=127.0.0.1:29092
export CASSANDRA_EAST=127.0.0.1:9042
export CASSANDRA_WEST=127.0.0.2:9042
export ETCD_ENDPOINTS=http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:31379
export NATS_URL=nats://127.0.0.1:14222
export TOXIPROXY_URL=http://127.0.0.1:18474
export PROXY_KAFKA_WEST=127.0.0.1:30092
export PROXY_CASSANDRA_WEST=127.0.0.1:30042
export PROXY_ETCD_WEST=http://127.0.0.1:30379
export PROXY_NATS_WEST=nats://127.0.0.1:30222
export LAB_JAVA_HOME=$(lab_java_home)
export LAB_LIB=$LAB_LIB
export LAB_STATE=$LAB_STATE
EOT
}

status() {
  local n st rc=0 total=0 rss
  [ -f "$ENV_FILE" ] && cat "$ENV_FILE"
  for n in "${ALL[@]}"; do
    st=$(proc_state "$n")
    if [ "$st" != down ]; then
      rss=$(proc_rss_kib "$n"); total=$((total + rss))
      printf '%-15s %-7s pid=%s rss=%sMiB\n' "$n" "$st" "$(cat "$(pid_file "$n")")" "$((rss / 1024))"
    elif [ "$n" = mm2 ]; then
      printf '%-15s %s\n' "$n" "off (start with deploy/lab/kafka/mm2.sh start)"
    else
      printf '%-15s down\n' "$n"; rc=1
    fi
  done
  printf '%-15s rss=%sMiB\n' total "$((total / 1024))"
  return $rc
}

# lab_lock: serialise up/down on .state/lab.lock (fd 9, closed for servers).
lab_lock() {
  exec 9>"$LAB_STATE/lab.lock"
  flock -w 600 9 || lab_die "another lab.sh up/down holds $LAB_STATE/lab.lock for 10 minutes (see: fuser $LAB_STATE/lab.lock)"
}

up() {
  lab_lock
  local all_up=1 n
  for n in "${ALL[@]}"; do [ "$n" = mm2 ] || proc_alive "$n" || all_up=0; done
  if [ $all_up = 1 ]; then lab_log "lab already running"; write_env; status; return; fi
  local t0=$SECONDS
  ensure_java
  ensure_jars
  build_helpers
  # The JVMs start in the background while the Go servers come up.
  "$HERE/kafka/kafka.sh" up > "$LAB_STATE/logs/kafka-up.log" 2>&1 9>&- &
  local kpid=$!
  "$HERE/cassandra/cassandra.sh" up > "$LAB_STATE/logs/cassandra-up.log" 2>&1 9>&- &
  local cpid=$!
  for n in "${ETCD_NAMES[@]}"; do proc_alive "$n" || start_etcd "$n"; done
  for n in "${NATS_NAMES[@]}"; do proc_alive "$n" || start_nats "$n"; done
  proc_alive proxy || start_proxy
  wait_etcd
  for n in "${NATS_NAMES[@]}"; do wait_port 127.0.0.1 "$(nats_port "$n")" 30 || lab_die "$n did not open its port"; done
  wait_port 127.0.0.1 18474 30 || lab_die "proxy API did not open"
  wait "$kpid" || { tail -20 "$LAB_STATE/logs/kafka-up.log" >&2; lab_die "Kafka did not come up"; }
  wait "$cpid" || { tail -20 "$LAB_STATE/logs/cassandra-up.log" >&2; lab_die "Cassandra did not come up"; }
  write_env
  lab_log "lab up in $((SECONDS - t0))s"
  status
}

down() {
  lab_lock
  "$HERE/kafka/kafka.sh" down 9>&- || true
  "$HERE/cassandra/cassandra.sh" down 9>&- || true
  local n
  for n in proxy "${NATS_NAMES[@]}" "${ETCD_NAMES[@]}"; do stop_proc "$n" 20; done
  rm -f "$ENV_FILE"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) cat "$ENV_FILE" ;;
  start) start_one "${2:?process name}" ;;
  stop) stop_proc "${2:?process name}" 30 ;;
  kill) signal_one KILL "${2:?process name}"; rm -f "$(pid_file "$2")" ;;
  pause) signal_one STOP "${2:?process name}" ;;
  resume) signal_one CONT "${2:?process name}" ;;
  *) echo "usage: $0 up|down|status|env|start|stop|kill|pause|resume [PROC]" >&2; exit 2 ;;
esac
