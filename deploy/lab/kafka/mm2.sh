#!/usr/bin/env bash
# mm2.sh start|stop|status: MirrorMaker 2 in dedicated mode copying east -> west
# (topic T in east appears in west as east.T). Process name mm2, pid .state/pids/mm2.pid,
# log .state/logs/mm2.log, config .state/data/mm2/mm2.properties (rendered at each start).
# Env: MM2_TOPICS (regex, default .*), MM2_GROUPS (regex, default .*), MM2_TASKS (default 1),
#      MM2_HEAP_OPTS (default "-Xmx512m -Xms128m"), MM2_START_TIMEOUT (default 60 s),
#      MM2_EXTRA (properties lines appended to the rendered config, e.g. producer compression).
set -euo pipefail
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/common.sh"

MM2_HEAP_OPTS=${MM2_HEAP_OPTS:--Xmx512m -Xms128m}
MM2_START_TIMEOUT=${MM2_START_TIMEOUT:-60}
MM2_LOG=$LAB_STATE/logs/mm2.log

render() {
  local dir=$LAB_STATE/data/mm2 esc
  mkdir -p "$dir"
  # escape for sed replacement: \ & |
  esc() { printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'; }
  sed -e "s|@EAST@|$(kafka_addr kafka-east)|g" -e "s|@WEST@|$(kafka_addr kafka-west)|g" \
      -e "s|@TOPICS@|$(esc "${MM2_TOPICS:-.*}")|g" -e "s|@GROUPS@|$(esc "${MM2_GROUPS:-.*}")|g" \
      -e "s|@TASKS@|${MM2_TASKS:-1}|g" \
      "$KAFKA_DIR/mm2.properties.tmpl" > "$dir/mm2.properties"
  if [ -n "${MM2_EXTRA:-}" ]; then printf '\n# MM2_EXTRA\n%s\n' "$MM2_EXTRA" >> "$dir/mm2.properties"; fi
  echo "$dir/mm2.properties"
}

start() {
  if proc_alive mm2; then lab_log "mm2 already running (pid $(cat "$(pid_file mm2)"))"; return 0; fi
  kafka_need_jars
  local n a
  for n in "${KAFKA_NAMES[@]}"; do
    a=$(kafka_addr "$n")
    (exec 3<>"/dev/tcp/${a%:*}/${a#*:}") 2>/dev/null || lab_die "$n ($a) is not up: run kafka.sh up first"
  done
  local cfg java; cfg=$(render); java=$(kafka_java)
  local mark; mark=$( [ -f "$MM2_LOG" ] && wc -l <"$MM2_LOG" || echo 0)
  # shellcheck disable=SC2086
  start_bg mm2 "$MM2_LOG" "$java" $MM2_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DIR/log4j2.properties" \
    -cp "$KAFKA_LIB/*" org.apache.kafka.connect.mirror.MirrorMaker "$cfg" --clusters west
  # Wait until the east->west source connector has started its task(s).
  local deadline=$((SECONDS + MM2_START_TIMEOUT))
  until tail -n +"$((mark + 1))" "$MM2_LOG" | grep -q 'MirrorSourceConnector.*[Ss]tarting\|Starting.*MirrorSourceTask\|task-thread-MirrorSourceConnector'; do
    proc_alive mm2 || { tail -n 30 "$MM2_LOG" >&2; lab_die "mm2 exited during start-up"; }
    [ $SECONDS -lt $deadline ] || { lab_log "mm2: no source task seen in ${MM2_START_TIMEOUT}s (still running; see $MM2_LOG)"; return 0; }
    sleep 0.5
  done
  lab_log "mm2 replicating east -> west (topics '${MM2_TOPICS:-.*}', tasks ${MM2_TASKS:-1})"
}

status() {
  if proc_alive mm2; then
    printf '%-11s pid=%-8s %-8s %s\n' mm2 "$(cat "$(pid_file mm2)")" up "east->west"
  else
    printf '%-11s pid=%-8s %-8s %s\n' mm2 - down "east->west"; return 1
  fi
}

case ${1:-status} in
  start) start ;;
  stop) stop_proc mm2 60 ;;
  status) status ;;
  *) lab_die "usage: mm2.sh start|stop|status" ;;
esac
