#!/usr/bin/env bash
# Shared by kafka.sh and mm2.sh (sourced). Defines java/classpath helpers on top of ../lib.sh.
KAFKA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib.sh
. "$KAFKA_DIR/../lib.sh"

KAFKA_LIB=$LAB_LIB/kafka
KAFKA_HOST=127.0.0.1
KAFKA_NAMES=(kafka-east kafka-west)

# kafka_props NAME -> "node_id client_port controller_port cluster_id"
# Cluster ids are fixed (base64url of 16 ASCII bytes) so each cluster is recognisable.
kafka_props() {
  case $1 in
    kafka-east) echo "1 19092 19093 bGFiLWthZmthLWVhc3QtMQ" ;;  # "lab-kafka-east-1"
    kafka-west) echo "2 29092 29093 bGFiLWthZmthLXdlc3QtMQ" ;;  # "lab-kafka-west-1"
    *) lab_die "unknown kafka process '$1' (want kafka-east or kafka-west)" ;;
  esac
}

kafka_addr() { local p; read -r _ p _ _ <<<"$(kafka_props "$1")"; echo "$KAFKA_HOST:$p"; }

# kafka_metadata HOST:PORT [TIMEOUT]: send a Metadata v4 request (no topics) over bash's
# /dev/tcp and print the response body with non-printable bytes as '.'; it holds the
# advertised host of each registered broker and the cluster id. Fails when nothing answers.
kafka_metadata() {
  local addr=$1 t=${2:-5}
  timeout "$t" bash -c '
    exec 2>/dev/null 3<>"/dev/tcp/${1%:*}/${1#*:}" || exit 1
    # size=18 | api_key=3 api_version=4 correlation_id=7 client_id="lab" | topics=[] allow_auto_topic_creation=false
    printf "\x00\x00\x00\x12\x00\x03\x00\x04\x00\x00\x00\x07\x00\x03lab\x00\x00\x00\x00\x00" >&3
    n=$(dd bs=1 count=4 <&3 2>/dev/null | od -An -tu1 | awk "NF==4{print \$1*16777216+\$2*65536+\$3*256+\$4}")
    [ -n "$n" ] && [ "$n" -gt 8 ] || exit 1
    dd bs=1 count="$n" <&3 2>/dev/null | LC_ALL=C tr -c "[:graph:]" "."
  ' _ "$addr"
}

# kafka_ready NAME [TIMEOUT]: the broker answers Metadata with itself registered and its own cluster id.
kafka_ready() {
  local cid addr out
  read -r _ _ _ cid <<<"$(kafka_props "$1")"; addr=$(kafka_addr "$1")
  out=$(kafka_metadata "$addr" "${2:-5}") || return 1
  [[ $out == *"${addr%:*}"* && $out == *"$cid"* ]]
}

# kafka_java: path of a JDK 17 java; fails with a reason.
kafka_java() {
  local h; h=$(lab_java_home) || lab_die "no JDK 17 found (set LAB_JAVA_HOME or install openjdk-17-jdk-headless)"
  echo "$h/bin/java"
}

# kafka_need_jars: fetch the jars with Maven when the cache is empty.
kafka_need_jars() {
  compgen -G "$KAFKA_LIB/kafka_2.13-*.jar" >/dev/null && return 0
  command -v mvn >/dev/null || lab_die "no jars in $KAFKA_LIB and no mvn to fetch them"
  lab_log "fetching Kafka jars into $KAFKA_LIB (mvn dependency:copy-dependencies)"
  mvn -q -f "$KAFKA_DIR/pom.xml" dependency:copy-dependencies >&2 || lab_die "mvn dependency:copy-dependencies failed"
}

# kafka_tool CLASS ARGS...: run a Kafka command-line class (TopicCommand, ProducerPerformance...)
# in the foreground with the lab classpath and quiet logging.
kafka_tool() {
  local java; java=$(kafka_java) || exit 1
  # shellcheck disable=SC2086
  "$java" ${KAFKA_TOOL_OPTS:--Xmx512m} \
    -Dlog4j2.configurationFile="$KAFKA_DIR/tools-log4j2.properties" \
    -cp "$KAFKA_LIB/*" "$@"
}
