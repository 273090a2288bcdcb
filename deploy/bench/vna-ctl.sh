#!/usr/bin/env bash
# Start, reset and stop the archive for ../shared/bench (ARCHIVE_RESET_CMD / ARCHIVE_DOWN_CMD).
#   vna-ctl.sh reset   stop, empty (database, Redis db, data dir), start, wait for /api/health
#   vna-ctl.sh down    stop
# Env: VNA_BENCH_DIR (/tmp/vna-bench), BENCH_PG (postgres://postgres@127.0.0.1:5432), BENCH_DB (vna_bench), BENCH_REDIS_DB (12),
#      VNA_NODE_FLAGS (e.g. --cpu-prof), ARCHIVE_DIMSE_PORT (11112), VNA_HTTP_PORT (8080)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
: "${VNA_BENCH_DIR:=/tmp/vna-bench}" "${BENCH_PG:=postgres://postgres@127.0.0.1:5432}" "${BENCH_REDIS_DB:=12}" "${BENCH_DB:=vna_bench}"
DIR="$VNA_BENCH_DIR/vna"
PIDF="$DIR/vna.pid"
mkdir -p "$DIR"

# The archive outlives this script: it must not inherit descriptors such as a caller's flock(1) lock.
closefds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
  exec "$@"
}

stop() {
  if [ -f "$PIDF" ] && kill -0 "$(cat "$PIDF")" 2>/dev/null; then
    kill -TERM "$(cat "$PIDF")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$PIDF")" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$(cat "$PIDF")" 2>/dev/null || true
  fi
  rm -f "$PIDF"
}

case "${1:-}" in
  reset)
    stop
    psql "$BENCH_PG/postgres" -qc "DROP DATABASE IF EXISTS $BENCH_DB" -c "CREATE DATABASE $BENCH_DB" >/dev/null
    redis-cli -n "$BENCH_REDIS_DB" FLUSHDB >/dev/null
    rm -rf "$DIR/data"; mkdir -p "$DIR/data"
    [ -f "$ROOT/dist/apps/vna/src/main.js" ] || (cd "$ROOT" && npm run build --silent)
    DATABASE_URL="$BENCH_PG/$BENCH_DB" REDIS_URL="redis://127.0.0.1:6379/$BENCH_REDIS_DB" VNA_DATA_DIR="$DIR/data" \
      VNA_AES="${VNA_AES:-BENCHSCU@127.0.0.1:11113}" VNA_AE_TITLE=VNA VNA_DIMSE_PORT="${ARCHIVE_DIMSE_PORT:-11112}" VNA_HTTP_PORT="${VNA_HTTP_PORT:-8080}" VNA_LOG_LEVEL=${VNA_LOG_LEVEL:-warn} \
      closefds setsid node ${VNA_NODE_FLAGS:-} "$ROOT/dist/apps/vna/src/main.js" >> "$DIR/current.log" 2>&1 < /dev/null &
    echo $! > "$PIDF"
    for _ in $(seq 1 300); do
      curl -sf "http://127.0.0.1:${VNA_HTTP_PORT:-8080}/api/health" >/dev/null && exit 0
      kill -0 "$(cat "$PIDF")" 2>/dev/null || { tail -20 "$DIR/current.log" >&2; exit 1; }
      sleep 0.1
    done
    echo "archive not healthy after 30 s" >&2; exit 1 ;;
  down) stop ;;
  *) echo "usage: $0 reset|down" >&2; exit 2 ;;
esac
