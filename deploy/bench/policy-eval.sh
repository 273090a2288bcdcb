#!/usr/bin/env bash
# Lifecycle policy evaluation over a seeded catalog (issue 4, "Speed").
#   1. vna-ctl.sh reset (fresh database, migrated by the archive), archive stopped again;
#   2. seed-studies.sql (STUDIES studies, no object files), archive started on that database;
#   3. PUT /api/lifecycle/policy (4 rules), then ROUNDS x POST /api/lifecycle/evaluate?dryRun=true
#      and ROUNDS x GET /api/storage/tiers, each timed by curl (time_total).
# SKIP_SEED=1 reuses the seeded database (only restarts the archive). EXPLAIN=1 prints
# EXPLAIN (ANALYZE, BUFFERS) of the two catalog queries behind these endpoints.
# Usage: flock -o /tmp/vna-bench.lock deploy/bench/policy-eval.sh
# Env: STUDIES (100000), PATIENTS (40000), ROUNDS (3) and vna-ctl.sh's variables.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=/dev/null
source "${BENCH_LIB:-/work/shared/bench/lib.sh}"
: "${STUDIES:=100000}" "${PATIENTS:=40000}" "${ROUNDS:=3}" "${BENCH_PG:=postgres://postgres@127.0.0.1:5432}" "${BENCH_DB:=vna_bench}"
: "${VNA_HTTP_PORT:=8080}"
export VNA_BENCH_DIR BENCH_PG BENCH_DB VNA_HTTP_PORT
export VNA_LIFECYCLE_INTERVAL_S=0   # no scheduled (real) evaluation while measuring
API="http://127.0.0.1:$VNA_HTTP_PORT/api"
URL="$BENCH_PG/$BENCH_DB"
ctl() { "$ROOT/deploy/bench/vna-ctl.sh" "$@"; }
start_on_existing_db() {   # vna-ctl.sh reset would drop the database: start the archive the same way, keeping it
  local pidf="$VNA_BENCH_DIR/vna/vna.pid"
  DATABASE_URL="$URL" REDIS_URL="redis://127.0.0.1:6379/${BENCH_REDIS_DB:-12}" VNA_DATA_DIR="$VNA_BENCH_DIR/vna/data" VNA_AE_TITLE=VNA \
    VNA_DIMSE_PORT="${ARCHIVE_DIMSE_PORT:-11112}" VNA_HTTP_PORT="$VNA_HTTP_PORT" VNA_LOG_LEVEL=warn \
    setsid node ${VNA_NODE_FLAGS:-} "$ROOT/dist/apps/vna/src/main.js" >> "$VNA_BENCH_DIR/vna/current.log" 2>&1 < /dev/null 9>&- &
  echo $! > "$pidf"
  for _ in $(seq 1 300); do curl -sf "$API/health" >/dev/null && return 0; sleep 0.1; done
  die "archive not healthy"
}
if [ "${SKIP_SEED:-0}" != 1 ]; then
  ctl reset; ctl down
  t0=$(now)
  psql "$URL" -q -v studies="$STUDIES" -v patients="$PATIENTS" -f "$ROOT/deploy/bench/seed-studies.sql"
  log "seeded in $(elapsed "$t0") s"
fi
ctl down
start_on_existing_db
trap 'ctl down' EXIT
curl -sf -X PUT -H 'Content-Type: application/json' -H 'X-VNA-User: bench' "$API/lifecycle/policy" -d '{"settleMinutes": 60, "rules": [
  {"name": "old-cr-dx-to-cold", "match": {"modalities": ["CR", "DX"], "minStudyAgeDays": 1825}, "targetTier": "cold"},
  {"name": "unread-2y-to-cold", "match": {"minDaysSinceLastAccess": 730}, "targetTier": "cold"},
  {"name": "ct-mr-1y-to-warm", "match": {"modalities": ["CT", "MR", "NM"], "minStudyAgeDays": 365}, "targetTier": "warm"},
  {"name": "rest-180d-to-warm", "match": {"minDaysSinceIngest": 180}, "targetTier": "warm"}]}' >/dev/null
probe=$(cpu_probe)
for r in $(seq 1 "$ROUNDS"); do
  curl -sf -X POST -o "$VNA_BENCH_DIR/evaluate.json" -w '%{time_total}\n' "$API/lifecycle/evaluate?dryRun=true" > "$VNA_BENCH_DIR/t"
  s=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["studiesEvaluated"], len(d["moves"]))' "$VNA_BENCH_DIR/evaluate.json")
  read -r n moves <<<"$s"; t=$(cat "$VNA_BENCH_DIR/t")
  echo "result evaluate round=$r studies=$n planned_moves=$moves s=$t studies_per_s=$(fdiv "$n" "$t" %.0f) cpu_probe_ms=$probe"
done
for r in $(seq 1 "$ROUNDS"); do
  t=$(curl -sf -o /dev/null -w '%{time_total}' "$API/storage/tiers")
  echo "result tiers round=$r s=$t"
done
if [ "${EXPLAIN:-0}" = 1 ]; then
  psql "$URL" -c "EXPLAIN (ANALYZE, BUFFERS) SELECT l.storage_id, count(DISTINCT i.study_iuid)::int AS studies, count(*)::int AS instances, coalesce(sum(l.size_bytes), 0)::text AS bytes FROM location l JOIN instance i ON i.id = l.instance_fk WHERE l.status = 'OK' GROUP BY l.storage_id"
  psql "$URL" -c "EXPLAIN (ANALYZE, BUFFERS) SELECT s.id, s.study_iuid, s.modalities, s.study_date, s.created_at, s.last_access_at, coalesce(p.birth_date, '') AS birth_date,
      coalesce((SELECT array_agg(DISTINCT se.institution_name) FROM series se WHERE se.study_fk = s.id AND se.institution_name <> ''), '{}') AS institutions,
      ia.source_aes, ia.last_received_at,
      (SELECT coalesce(jsonb_object_agg(t.storage_id, t.bytes), '{}'::jsonb) FROM (
         SELECT l.storage_id, sum(l.size_bytes)::bigint AS bytes FROM instance i2
           JOIN LATERAL (SELECT storage_id, size_bytes FROM location WHERE instance_fk = i2.id AND status = 'OK' ORDER BY version DESC, id DESC LIMIT 1) l ON true
          WHERE i2.study_iuid = s.study_iuid GROUP BY l.storage_id) t) AS bytes_by_tier
      FROM study s LEFT JOIN patient p ON p.id = s.patient_fk
      CROSS JOIN LATERAL (SELECT coalesce(array_agg(DISTINCT i.source_ae) FILTER (WHERE i.source_ae <> ''), '{}') AS source_aes, max(i.received_at) AS last_received_at
                            FROM instance i WHERE i.study_iuid = s.study_iuid) ia
     WHERE s.id > 50000 AND s.retention_state = 'ACTIVE' ORDER BY s.id LIMIT 500"
fi
