#!/usr/bin/env bash
# Study moves hot -> warm between two filesystem tiers on the same disk, against `cp -r` + `sync`
# of the same object files, back to back (issue 4, "Speed").
#
# Per round: reset the archive (hot and warm both fs under $VNA_BENCH_DIR/vna/data), store the
# bench dataset with storescu, wait until every instance is indexed, `sync`; then
#   1. baseline: `cp -r` of the hot tier's directory to a new directory on the same disk + `sync`;
#   2. archive: POST /api/studies/{uid}/move {"targetTier":"warm"} for every study at once, and
#      wait (polling the study_move journal in PostgreSQL) until every move is COMPLETED; the wall
#      time runs from just before the first POST until the poll sees all COMPLETED. The journal's
#      own span (max(completed_at) - min(created_at)) and max(switched_at) - min(created_at) are
#      printed as well, and every move is checked COMPLETED through GET /api/storage/moves/{id}.
# Both read the same files from the page cache (the dataset fits in RAM many times over).
#
# Usage: flock -o /tmp/vna-bench.lock deploy/bench/tier-move.sh
# Env: ROUNDS (3), VNA_TIERING_CONCURRENCY (unset = archive default), WARM_AVAILABILITY (nearline),
#      plus vna-ctl.sh's VNA_BENCH_DIR, BENCH_DB, BENCH_REDIS_DB, ARCHIVE_DIMSE_PORT, VNA_HTTP_PORT,
#      VNA_NODE_FLAGS. Output: one "result" line per round (key=value) on stdout, progress on stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=/dev/null
source "${BENCH_LIB:-/work/shared/bench/lib.sh}"
: "${ROUNDS:=3}" "${WARM_AVAILABILITY:=nearline}" "${BENCH_PG:=postgres://postgres@127.0.0.1:5432}" "${BENCH_DB:=vna_bench}"
: "${ARCHIVE_DIMSE_PORT:=11112}" "${VNA_HTTP_PORT:=8080}"
export VNA_BENCH_DIR BENCH_PG BENCH_DB ARCHIVE_DIMSE_PORT VNA_HTTP_PORT
[ -n "${VNA_TIERING_CONCURRENCY:-}" ] && export VNA_TIERING_CONCURRENCY
DATA="$VNA_BENCH_DIR/vna/data"
API="http://127.0.0.1:$VNA_HTTP_PORT/api"
export VNA_TIERS='[{"id":"hot","kind":"fs","availability":"online","path":"storage/hot"},{"id":"warm","kind":"fs","availability":"'"$WARM_AVAILABILITY"'","path":"storage/warm"}]'
need storescu curl psql python3
sql() { psql "$BENCH_PG/$BENCH_DB" -qAtc "$1"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }   # utime + stime of the archive process
total=$(dataset_instances); bytes=$(dataset_bytes)

store_dataset() {
  "$ROOT/deploy/bench/vna-ctl.sh" reset
  local dirs; dirs=$(manifest | cut -f9 | sed "s|^|$DATASET_DIR/|")
  # shellcheck disable=SC2086
  TCP_NODELAY=1 storescu -aet "$BENCH_AET" -aec VNA +sd +r -nh 127.0.0.1 "$ARCHIVE_DIMSE_PORT" $dirs
  for _ in $(seq 1 600); do
    [ "$(sql "SELECT count(*) FROM instance WHERE status = 'INDEXED'")" = "$total" ] && break; sleep 0.2
  done
  [ "$(sql "SELECT count(*) FROM instance WHERE status = 'INDEXED'")" = "$total" ] || die "not all $total instances indexed"
  sync
}

for round in $(seq 1 "$ROUNDS"); do
  log "round $round: storing the dataset ($total instances)"
  store_dataset
  hot_bytes=$(du -sb "$DATA/storage/hot" | cut -f1)
  probe=$(cpu_probe)

  # 1. baseline
  rm -rf "$DATA/cp-copy"; sync
  t0=$(now); cp -r "$DATA/storage/hot" "$DATA/cp-copy"; sync; t_cp=$(elapsed "$t0")
  rm -rf "$DATA/cp-copy"; sync

  # 2. the archive
  pid=$(cat "$VNA_BENCH_DIR/vna/vna.pid"); c0=$(cpu_ticks "$pid")
  mapfile -t uids < <(manifest | cut -f1)
  t0=$(now)
  # All POSTs at once (one curl each, in parallel): a scheduler or a policy run hands the tiering
  # workers many studies together; a python3 start per POST measured the shell loop, not the moves.
  printf '%s\n' "${uids[@]}" | xargs -P "${#uids[@]}" -I{} curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' \
    -H 'X-User: bench' -d '{"targetTier":"warm"}' "$API/studies/{}/move" || die "a move request failed"
  t_post=$(elapsed "$t0")
  for _ in $(seq 1 3000); do
    read -r done bad < <(sql "SELECT count(*) FILTER (WHERE state = 'COMPLETED'), count(*) FILTER (WHERE state IN ('FAILED','ABORTED')) FROM study_move" | tr '|' ' ')
    [ "$bad" = 0 ] || die "$bad move(s) failed: $(sql "SELECT state, error FROM study_move WHERE state IN ('FAILED','ABORTED') LIMIT 3")"
    [ "$done" = "${#uids[@]}" ] && break
    sleep 0.05
  done
  t_mv=$(elapsed "$t0")
  c1=$(cpu_ticks "$pid")
  [ "$done" = "${#uids[@]}" ] || die "moves not completed after the poll"
  mapfile -t ids < <(sql "SELECT id FROM study_move ORDER BY id")
  for id in "${ids[@]}"; do
    st=$(curl -sf "$API/storage/moves/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$st" = COMPLETED ] || die "move $id is $st through the API"
  done
  read -r j_done j_switch < <(sql "SELECT extract(epoch FROM max(completed_at) - min(created_at)), extract(epoch FROM max(switched_at) - min(created_at)) FROM study_move" | tr '|' ' ')
  moved=$(sql "SELECT sum(bytes_moved) FROM study_move")
  [ "$moved" = "$bytes" ] || log "bytes moved $moved != dataset bytes $bytes"
  left=$(find "$DATA/storage/hot" -type f -name '*.dcm' | wc -l); warm=$(find "$DATA/storage/warm" -type f -name '*.dcm' | wc -l)
  [ "$left" = 0 ] && [ "$warm" = "$total" ] || die "after the moves: $left objects left in hot, $warm in warm (expected 0 / $total)"
  hz=$(getconf CLK_TCK)
  echo "result round=$round concurrency=${VNA_TIERING_CONCURRENCY:-default} bytes=$moved hot_dir_bytes=$hot_bytes cpu_probe_ms=$probe" \
    "cp_s=$t_cp cp_MBps=$(fdiv "$moved" "$(awk -v t="$t_cp" 'BEGIN{print t*1e6}')")" \
    "move_s=$t_mv move_MBps=$(fdiv "$moved" "$(awk -v t="$t_mv" 'BEGIN{print t*1e6}')") ratio=$(fdiv "$t_cp" "$t_mv" %.3f)" \
    "post_s=$t_post journal_completed_s=$j_done journal_switched_s=$j_switch archive_cpu_s=$(fdiv $((c1 - c0)) "$hz")"
done
"$ROOT/deploy/bench/vna-ctl.sh" down
