#!/usr/bin/env bash
# nodetool for the lab's Cassandra nodes: nodetool.sh east|west ARGS...
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib.sh"
case ${1:-} in
  east) port=7199 ;; west) port=7299 ;;
  *) echo "usage: $0 east|west ARGS..." >&2; exit 2 ;;
esac
shift
java="$(lab_java_home)/bin/java" || lab_die "no JDK 17 found"
mapfile -t jpms < <(grep -E '^--add-(exports|opens)=' "$HERE/jvm.options")
exec "$java" -Xmx128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Dlogback.configurationFile="$HERE/logback.xml" \
  "${jpms[@]}" -cp "$LAB_LIB/cassandra/*" org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$port" "$@"
