#!/usr/bin/env bash
# Study moves hot (fs) -> warm on s3rver (issue 4, "Speed": S3 moves in MB/s).
# s3rver is a test server (Node, objects as files plus metadata files on the same disk), not a
# production S3: the figure says what the archive's S3 path costs against it, not what AWS S3 or
# MinIO would give.
# Per round: reset the archive, store the bench dataset, wait until indexed, `sync`, then POST a
# move to "warm" for the studies chosen (default: all 20) and poll the journal until all are
# COMPLETED (wall time from just before the first POST), checked through GET /api/storage/moves/{id}.
# Usage: flock -o /tmp/vna-bench.lock deploy/bench/tier-move-s3.sh
# Env: ROUNDS (3), STUDIES (all; or a number: the first N of manifest.tsv), S3RVER_PORT (4581),
#      VNA_TIERING_CONCURRENCY, and vna-ctl.sh's variables.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=/dev/null
source "${BENCH_LIB:-/work/shared/bench/lib.sh}"
: "${ROUNDS:=3}" "${STUDIES:=all}" "${S3RVER_PORT:=4581}" "${BENCH_PG:=postgres://postgres@127.0.0.1:5432}" "${BENCH_DB:=vna_bench}"
: "${ARCHIVE_DIMSE_PORT:=11112}" "${VNA_HTTP_PORT:=8080}"
export VNA_BENCH_DIR BENCH_PG BENCH_DB ARCHIVE_DIMSE_PORT VNA_HTTP_PORT
[ -n "${VNA_TIERING_CONCURRENCY:-}" ] && export VNA_TIERING_CONCURRENCY
API="http://127.0.0.1:$VNA_HTTP_PORT/api"
S3DIR="$VNA_BENCH_DIR/s3rver"
export VNA_TIERS='[{"id":"hot","kind":"fs","availability":"online","path":"storage/hot"},{"id":"warm","kind":"s3","availability":"nearline","endpoint":"http://127.0.0.1:'"$S3RVER_PORT"'","bucket":"vna-warm","accessKey":"S3RVER","secretKey":"S3RVER"}]'
need storescu curl psql python3 node
sql() { psql "$BENCH_PG/$BENCH_DB" -qAtc "$1"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
total=$(dataset_instances)
s3pid=""
trap 'stop_pid "$s3pid" s3rver.cjs; "$ROOT/deploy/bench/vna-ctl.sh" down' EXIT

for round in $(seq 1 "$ROUNDS"); do
  stop_pid "$s3pid" s3rver.cjs; rm -rf "$S3DIR"; mkdir -p "$S3DIR"
  s3pid=$(start_bg "$VNA_BENCH_DIR/s3rver.log" node "$ROOT/deploy/bench/s3rver.cjs" "$S3RVER_PORT" "$S3DIR")
  wait_port 127.0.0.1 "$S3RVER_PORT" 20 || die "s3rver did not start"
  log "round $round: storing the dataset ($total instances)"
  "$ROOT/deploy/bench/vna-ctl.sh" reset
  # shellcheck disable=SC2046
  TCP_NODELAY=1 storescu -aet "$BENCH_AET" -aec VNA +sd +r -nh 127.0.0.1 "$ARCHIVE_DIMSE_PORT" $(manifest | cut -f9 | sed "s|^|$DATASET_DIR/|")
  for _ in $(seq 1 600); do [ "$(sql "SELECT count(*) FROM instance WHERE status = 'INDEXED'")" = "$total" ] && break; sleep 0.2; done
  [ "$(sql "SELECT count(*) FROM instance WHERE status = 'INDEXED'")" = "$total" ] || die "not all instances indexed"
  sync
  if [ "$STUDIES" = all ]; then mapfile -t uids < <(manifest | cut -f1); else mapfile -t uids < <(manifest | head -n "$STUDIES" | cut -f1); fi
  probe=$(cpu_probe)
  pid=$(cat "$VNA_BENCH_DIR/vna/vna.pid"); c0=$(cpu_ticks "$pid"); s0=$(cpu_ticks "$s3pid")
  ids=(); t0=$(now)
  for uid in "${uids[@]}"; do
    ids+=("$(curl -sf -X POST -H 'Content-Type: application/json' -d '{"targetTier":"warm"}' "$API/studies/$uid/move" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["moveId"])')")
  done
  for _ in $(seq 1 6000); do
    read -r done bad < <(sql "SELECT count(*) FILTER (WHERE state = 'COMPLETED'), count(*) FILTER (WHERE state IN ('FAILED','ABORTED')) FROM study_move" | tr '|' ' ')
    [ "$bad" = 0 ] || die "$bad move(s) failed: $(sql "SELECT state, error FROM study_move WHERE state IN ('FAILED','ABORTED') LIMIT 3")"
    [ "$done" = "${#uids[@]}" ] && break
    sleep 0.05
  done
  t_mv=$(elapsed "$t0"); c1=$(cpu_ticks "$pid"); s1=$(cpu_ticks "$s3pid")
  [ "$done" = "${#uids[@]}" ] || die "moves not completed"
  for id in "${ids[@]}"; do
    st=$(curl -sf "$API/storage/moves/$id" | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
    [ "$st" = COMPLETED ] || die "move $id is $st through the API"
  done
  read -r j_done j_switch < <(sql "SELECT extract(epoch FROM max(completed_at) - min(created_at)), extract(epoch FROM max(switched_at) - min(created_at)) FROM study_move" | tr '|' ' ')
  moved=$(sql "SELECT sum(bytes_moved) FROM study_move"); n=$(sql "SELECT sum(instances_moved) FROM study_move")
  [ "$(sql "SELECT count(*) FROM location WHERE storage_id = 'warm' AND status = 'OK'")" = "$n" ] || die "warm locations != instances moved"
  hz=$(getconf CLK_TCK)
  echo "result round=$round studies=${#uids[@]} instances=$n bytes=$moved cpu_probe_ms=$probe move_s=$t_mv" \
    "move_MBps=$(fdiv "$moved" "$(awk -v t="$t_mv" 'BEGIN{print t*1e6}')") journal_completed_s=$j_done journal_switched_s=$j_switch" \
    "archive_cpu_s=$(fdiv $((c1 - c0)) "$hz") s3rver_cpu_s=$(fdiv $((s1 - s0)) "$hz")"
done
