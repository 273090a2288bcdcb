#!/usr/bin/env bash
# Migration throughput from Orthanc (issue 6, "Speed"): a migration job of every study of the
# bench dataset from the reference Orthanc into this archive, against a plain `movescu` of the same
# studies into dcmtk's `storescp`, back to back, on one machine.
#
# Once: the bench dataset ($DATASET_DIR; generated with /work/shared/bench/gen-dataset.py when
# absent) is stored into a fresh reference Orthanc (orthanc-up.sh --fresh, storescu), checked
# (Orthanc's /statistics = the manifest's instance count), and Orthanc is told the archive's AE
# (VNA@127.0.0.1:$ARCHIVE_DIMSE_PORT) as a modality, so it accepts it as caller and move destination.
# Per round:
#   1. baseline: `storescp -od DIR` (AET $BENCH_AET, port $BENCH_SCP_PORT; writes files, no fsync)
#      and one `movescu -S -aem $BENCH_AET` per study, one after the other; the wall time runs from
#      the first movescu's start to the last one's end; every file must have arrived.
#   2. for each mode in $MODES (move = C-MOVE source, get = C-GET source): an empty archive
#      (vna-ctl.sh reset), POST /api/migrations for the whole source, and a poll of migration_job
#      in PostgreSQL every 0.5 s until the job is COMPLETED; the wall time runs from just before the
#      POST until the job's finished_at (the job's own created_at → finished_at is printed too).
#      Checked: state COMPLETED and figures.instances.migrated = the dataset's count through the
#      API, the archive's instance rows = the dataset's count. The archive's CPU seconds (utime +
#      stime) during the job are printed as well.
# Ratio = baseline seconds / migration seconds (1 = as fast as movescu into storescp).
#
# Usage: flock -o /tmp/vna-bench.lock deploy/bench/migration.sh
# Env: RUNS (3), MODES ("direct move get"; direct = step 2 without a job: one `movescu -aem VNA` per
#      study into the empty archive, timed like the baseline — the archive's own ingest rate), MAX_ASSOCIATIONS (unset = the API's default), plus lib.sh's
#      VNA_BENCH_DIR, DATASET_DIR, BENCH_AET, BENCH_SCP_PORT, orthanc-up.sh's ORTHANC_* and
#      vna-ctl.sh's BENCH_DB, BENCH_REDIS_DB, ARCHIVE_DIMSE_PORT, VNA_HTTP_PORT, VNA_NODE_FLAGS.
#      Output: one "result" line per round and mode (key=value) on stdout, progress on stderr.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="${BENCH:-/work/shared/bench}"
# shellcheck source=/dev/null
source "$BENCH/lib.sh"
: "${RUNS:=3}" "${MODES:=direct move get}" "${BENCH_PG:=postgres://postgres@127.0.0.1:5432}" "${BENCH_DB:=vna_bench}"
: "${ARCHIVE_DIMSE_PORT:=11112}" "${VNA_HTTP_PORT:=8080}"
: "${ORTHANC_AET:=ORTHANC}" "${ORTHANC_DICOM_PORT:=4242}" "${ORTHANC_HTTP_PORT:=8042}"
export VNA_BENCH_DIR BENCH_PG BENCH_DB ARCHIVE_DIMSE_PORT VNA_HTTP_PORT ORTHANC_AET ORTHANC_DICOM_PORT ORTHANC_HTTP_PORT
export TCP_NODELAY="${TCP_NODELAY:-1}"
API="http://127.0.0.1:$VNA_HTTP_PORT/api"
ORTHANC_HTTP="http://127.0.0.1:$ORTHANC_HTTP_PORT"
WORK="$VNA_BENCH_DIR/migration"
need storescu movescu storescp curl psql python3
sql() { psql "$BENCH_PG/$BENCH_DB" -qAtc "$1"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

if [ ! -f "$DATASET_DIR/manifest.tsv" ]; then
  py=$(pick_python) || die "no python3 with pydicom + numpy for gen-dataset.py"
  log "generating the bench dataset in $DATASET_DIR"
  "$py" "$BENCH/gen-dataset.py" >&2
fi
total=$(dataset_instances); bytes=$(dataset_bytes)
mapfile -t uids < <(manifest | cut -f1)

SCP_PID=""
cleanup() {
  if [ -n "$SCP_PID" ]; then stop_pid "$SCP_PID" storescp; fi
  "$ROOT/deploy/bench/vna-ctl.sh" down || true
  "$BENCH/orthanc-down.sh" || true
}
trap cleanup EXIT

(cd "$ROOT" && npm run build --silent)
mkdir -p "$WORK"
log "loading ${#uids[@]} studies ($total instances, $(fdiv "$bytes" 1e6 %.0f) MB) into a fresh Orthanc"
"$BENCH/orthanc-up.sh" --fresh
dirs=$(manifest | cut -f9 | sed "s|^|$DATASET_DIR/|")
# shellcheck disable=SC2086
storescu -aet "$BENCH_AET" -aec "$ORTHANC_AET" +sd +r -nh 127.0.0.1 "$ORTHANC_DICOM_PORT" $dirs
in_orthanc=$(curl -sf "$ORTHANC_HTTP/statistics" | json 'd["CountInstances"]')
[ "$in_orthanc" = "$total" ] || die "Orthanc holds $in_orthanc instances, the dataset $total"
curl -sf -X PUT -d "{\"AET\":\"VNA\",\"Host\":\"127.0.0.1\",\"Port\":$ARCHIVE_DIMSE_PORT}" "$ORTHANC_HTTP/modalities/vna" >/dev/null

for round in $(seq 1 "$RUNS"); do
  # 1. baseline: movescu of every study into storescp
  rm -rf "$WORK/recv"; mkdir -p "$WORK/recv"; sync
  SCP_PID=$(start_bg "$WORK/storescp.log" storescp -aet "$BENCH_AET" -od "$WORK/recv" "$BENCH_SCP_PORT")
  wait_port 127.0.0.1 "$BENCH_SCP_PORT" 10 || die "storescp did not start on port $BENCH_SCP_PORT"
  probe=$(cpu_probe)
  log "round $round: movescu of ${#uids[@]} studies -> storescp"
  t0=$(now)
  for uid in "${uids[@]}"; do
    movescu -S -aet "$BENCH_AET" -aec "$ORTHANC_AET" -aem "$BENCH_AET" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$uid" \
      127.0.0.1 "$ORTHANC_DICOM_PORT" >> "$WORK/movescu.log" 2>&1 || die "movescu of $uid failed (see $WORK/movescu.log)"
  done
  t_base=$(elapsed "$t0")
  stop_pid "$SCP_PID" storescp; SCP_PID=""
  got=$(find "$WORK/recv" -type f | wc -l)
  [ "$got" = "$total" ] || die "storescp received $got files of $total"
  echo "result round=$round what=movescu-storescp instances=$got bytes=$bytes seconds=$t_base" \
    "inst_per_s=$(fdiv "$got" "$t_base" %.1f) MBps=$(fdiv "$bytes" "$(awk -v t="$t_base" 'BEGIN{print t*1e6}')" %.1f) cpu_probe_ms=$probe"
  rm -rf "$WORK/recv"

  # 2. migration jobs into the archive (and, mode "direct", movescu into the archive: the archive's ingest without the job)
  for mode in $MODES; do
    "$ROOT/deploy/bench/vna-ctl.sh" reset
    pid=$(cat "$VNA_BENCH_DIR/vna/vna.pid"); c0=$(cpu_ticks "$pid")
    hz=$(getconf CLK_TCK)
    if [ "$mode" = direct ]; then
      log "round $round: movescu of ${#uids[@]} studies -> the archive (no migration job)"
      t0=$(now)
      for uid in "${uids[@]}"; do
        movescu -S -aet "$BENCH_AET" -aec "$ORTHANC_AET" -aem VNA -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$uid" \
          127.0.0.1 "$ORTHANC_DICOM_PORT" >> "$WORK/movescu-vna.log" 2>&1 || die "movescu of $uid into the archive failed (see $WORK/movescu-vna.log)"
      done
      t_dir=$(elapsed "$t0")
      c1=$(cpu_ticks "$pid")
      stored=$(sql "SELECT count(*) FROM instance")
      [ "$stored" = "$total" ] || die "the archive holds $stored instances after the movescu, the dataset $total"
      echo "result round=$round what=movescu-archive instances=$stored bytes=$bytes seconds=$t_dir" \
        "inst_per_s=$(fdiv "$stored" "$t_dir" %.1f) MBps=$(fdiv "$bytes" "$(awk -v t="$t_dir" 'BEGIN{print t*1e6}')" %.1f)" \
        "ratio=$(fdiv "$t_base" "$t_dir" %.3f) archive_cpu_s=$(fdiv $((c1 - c0)) "$hz")"
      continue
    fi
    throttle=""
    [ -n "${MAX_ASSOCIATIONS:-}" ] && throttle=",\"throttle\":{\"maxAssociations\":$MAX_ASSOCIATIONS}"
    body="{\"name\":\"bench $mode round $round\",\"source\":{\"kind\":\"dimse\",\"aeTitle\":\"$ORTHANC_AET\",\"host\":\"127.0.0.1\",\"port\":$ORTHANC_DICOM_PORT,\"retrieve\":\"$mode\"}$throttle}"
    log "round $round: migration by C-${mode^^} of ${#uids[@]} studies"
    t0=$(now)
    id=$(curl -sf -X POST -H 'Content-Type: application/json' -d "$body" "$API/migrations" | json 'd["id"]')
    state=""
    # Poll twice a second (a psql every 50 ms costs the machine ~15% of its CPU and slowed the job
    # measurably); the time is taken from the job's own finished_at, so the poll adds no error.
    for _ in $(seq 1 1200); do
      state=$(sql "SELECT state FROM migration_job WHERE id = $id")
      case "$state" in COMPLETED|FAILED|CANCELED) break ;; esac
      sleep 0.5
    done
    c1=$(cpu_ticks "$pid")
    t_mig=$(elapsed "$t0" "$(sql "SELECT extract(epoch FROM finished_at) FROM migration_job WHERE id = $id")")
    [ "$state" = COMPLETED ] || die "migration $id is $state: $(sql "SELECT state, last_error FROM migration_study WHERE migration_fk = $id AND state <> 'done' LIMIT 3")"
    view=$(curl -sf "$API/migrations/$id")
    migrated=$(echo "$view" | json 'd["figures"]["instances"]["migrated"]')
    [ "$(echo "$view" | json 'd["state"]')" = COMPLETED ] || die "migration $id is not COMPLETED through the API"
    [ "$migrated" = "$total" ] || die "migration $id migrated $migrated instances, the dataset has $total"
    stored=$(sql "SELECT count(*) FROM instance")
    [ "$stored" = "$total" ] || die "the archive holds $stored instances, the dataset $total"
    read -r j_span first_start < <(sql "SELECT extract(epoch FROM finished_at - created_at), extract(epoch FROM (SELECT min(started_at) FROM migration_study WHERE migration_fk = $id) - created_at) FROM migration_job WHERE id = $id" | tr '|' ' ')
    assoc=$(echo "$view" | json 'd["throttle"]["maxAssociations"]')
    node "$ROOT/dist/apps/cli/src/main.js" --url "http://127.0.0.1:$VNA_HTTP_PORT" migrate status "$id" | sed 's/^/  cli: /' >&2
    echo "result round=$round what=migration-$mode max_associations=$assoc instances=$migrated bytes=$bytes seconds=$t_mig" \
      "inst_per_s=$(fdiv "$migrated" "$t_mig" %.1f) MBps=$(fdiv "$bytes" "$(awk -v t="$t_mig" 'BEGIN{print t*1e6}')" %.1f)" \
      "ratio=$(fdiv "$t_base" "$t_mig" %.3f) job_span_s=$j_span first_study_after_s=$first_start archive_cpu_s=$(fdiv $((c1 - c0)) "$hz")" \
      "api_recent_inst_per_s=$(echo "$view" | json 'd["figures"]["recent"]["instancesPerSecond"]')"
  done
done
