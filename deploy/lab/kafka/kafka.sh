#!/usr/bin/env bash
# kafka.sh up|down|status|start NAME|stop NAME|env|tool CLASS ARGS...
# Two single-node KRaft clusters (broker+controller in one JVM) on loopback:
#   kafka-east 127.0.0.1:19092 (controller 19093), kafka-west 127.0.0.1:29092 (controller 29093).
# Data .state/data/NAME/, log .state/logs/NAME.log, pid .state/pids/NAME.pid.
# Env: KAFKA_HEAP_OPTS (default "-Xmx512m -Xms256m"), KAFKA_AUTO_CREATE_TOPICS (default false,
#      applied when the config is rendered, i.e. at every start), KAFKA_UP_TIMEOUT (default 90 s).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}
KAFKA_UP_TIMEOUT=${KAFKA_UP_TIMEOUT:-90}

# render_config NAME: writes .state/data/NAME/server.properties, prints its path.
render_config() {
  local name=$1 id cport ctl cid dir
  read -r id cport ctl cid <<<"$(kafka_props "$name")"
  dir=$LAB_STATE/data/$name
  mkdir -p "$dir/kraft"
  sed -e "s|@NAME@|$name|g" -e "s|@NODE_ID@|$id|g" -e "s|@HOST@|$KAFKA_HOST|g" \
      -e "s|@CLIENT_PORT@|$cport|g" -e "s|@CONTROLLER_PORT@|$ctl|g" \
      -e "s|@LOG_DIR@|$dir/kraft|g" -e "s|@AUTO_CREATE@|${KAFKA_AUTO_CREATE_TOPICS:-false}|g" \
      "$KAFKA_DIR/server.properties.tmpl" > "$dir/server.properties"
  echo "$dir/server.properties"
}

# format_once NAME CONFIG: format the KRaft log dir unless already formatted.
format_once() {
  local name=$1 cfg=$2 cid dir java
  read -r _ _ _ cid <<<"$(kafka_props "$name")"
  dir=$LAB_STATE/data/$name/kraft
  [ -f "$dir/meta.properties" ] && return 0
  java=$(kafka_java)
  lab_log "formatting $dir (cluster id $cid)"
  "$java" -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.properties" -cp "$KAFKA_LIB/*" \
    kafka.tools.StorageTool format --cluster-id "$cid" --config "$cfg" --ignore-formatted \
    >>"$LAB_STATE/logs/$name.log" 2>&1 || lab_die "formatting $name failed, see $LAB_STATE/logs/$name.log"
}

# prepare NAME: render the config and format the log dir (once). Skipped if running.
prepare() {
  proc_alive "$1" && return 0
  format_once "$1" "$(render_config "$1")"
}

# launch NAME: start the prepared broker in the background (no wait). No-op if running.
launch() {
  local name=$1 cfg=$LAB_STATE/data/$1/server.properties java
  if proc_alive "$name"; then return 0; fi
  java=$(kafka_java)
  # shellcheck disable=SC2086
  start_bg "$name" "$LAB_STATE/logs/$name.log" "$java" $KAFKA_HEAP_OPTS \
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dlab.name="$name" \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$cfg"
}

# ready NAME: wait until the broker answers a Metadata request with its own cluster id.
ready() {
  local name=$1 deadline=$((SECONDS + KAFKA_UP_TIMEOUT))
  until kafka_ready "$name"; do
    proc_alive "$name" || { lab_log "$name exited during start-up; tail of its log:"; tail -n 20 "$LAB_STATE/logs/$name.log" >&2; return 1; }
    [ $SECONDS -lt $deadline ] || { lab_log "$name: no metadata answer from $(kafka_addr "$name") after ${KAFKA_UP_TIMEOUT}s"; return 1; }
    sleep 0.2
  done
}

up_names() {
  local n pids=() rc=0 start=$SECONDS
  kafka_need_jars
  local todo=()
  for n in "$@"; do proc_alive "$n" && kafka_ready "$n" || todo+=("$n"); done
  if [ ${#todo[@]} -eq 0 ]; then lab_log "kafka already up: $*"; return 0; fi
  for n in "$@"; do prepare "$n" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc -eq 0 ] || lab_die "preparing kafka failed"
  pids=()
  for n in "$@"; do launch "$n"; done
  for n in "$@"; do ready "$n" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc -eq 0 ] || lab_die "kafka did not come up (logs in $LAB_STATE/logs/)"
  lab_log "kafka up: $(for n in "$@"; do printf '%s=%s ' "$n" "$(kafka_addr "$n")"; done)($((SECONDS - start))s)"
}

status_line() {
  local name=$1 addr pid=- state=down
  addr=$(kafka_addr "$name")
  if proc_alive "$name"; then
    pid=$(cat "$(pid_file "$name")")
    if kafka_ready "$name" 2; then state=up; else state=unready; fi
  fi
  printf '%-11s pid=%-8s %-8s %s\n' "$name" "$pid" "$state" "$addr"
}

cmd=${1:-status}; shift || true
case $cmd in
  up) up_names "${KAFKA_NAMES[@]}" ;;
  down)
    # MM2 needs both clusters: stop it first rather than leave it retrying.
    proc_alive mm2 && stop_proc mm2 60
    for n in "${KAFKA_NAMES[@]}"; do stop_proc "$n" 60 & done; wait ;;
  start) [ $# -eq 1 ] || lab_die "usage: kafka.sh start kafka-east|kafka-west"; kafka_props "$1" >/dev/null; up_names "$1" ;;
  stop) [ $# -eq 1 ] || lab_die "usage: kafka.sh stop kafka-east|kafka-west"; kafka_props "$1" >/dev/null; stop_proc "$1" 60 ;;
  status)
    rc=0
    for n in "${KAFKA_NAMES[@]}"; do line=$(status_line "$n"); echo "$line"; [[ $line == *" up "* ]] || rc=1; done
    exit $rc ;;
  env) echo "KAFKA_EAST=$(kafka_addr kafka-east)"; echo "KAFKA_WEST=$(kafka_addr kafka-west)" ;;
  tool) [ $# -ge 1 ] || lab_die "usage: kafka.sh tool CLASS ARGS..."; kafka_need_jars; kafka_tool "$@" ;;
  *) lab_die "usage: kafka.sh up|down|status|start NAME|stop NAME|env|tool CLASS ARGS..." ;;
esac
