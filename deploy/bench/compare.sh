#!/usr/bin/env bash
# Runs ../shared/bench against the reference Orthanc and then this archive, in one session, on the
# same dataset, and prints the ratio table. Results: $VNA_BENCH_DIR/results/{orthanc,vna}-<stamp>.
#   RUNS=3 EXTRAS=0 BAD=1 DISK=1 deploy/bench/compare.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BENCH="${BENCH:-$HERE/../../../shared/bench}"
: "${VNA_BENCH_DIR:=/tmp/vna-bench}" "${RUNS:=3}" "${EXTRAS:=0}" "${BAD:=1}" "${DISK:=1}"
export VNA_BENCH_DIR RUNS EXTRAS BAD DISK
STAMP=$(date +%Y%m%d-%H%M%S)
OUT="$VNA_BENCH_DIR/results"; mkdir -p "$OUT"
(cd "$HERE/../.." && npm run build --silent)

RESULTS_DIR="$OUT/orthanc-$STAMP" "$BENCH/run-all.sh"
DISK=0 RESULTS_DIR="$OUT/vna-$STAMP" ARCHIVE_NAME=vna ARCHIVE_AET=VNA ARCHIVE_DIMSE_PORT=11112 \
  ARCHIVE_DICOMWEB=http://127.0.0.1:8080/dicom-web ARCHIVE_RESET_CMD="$HERE/vna-ctl.sh reset" \
  ARCHIVE_DOWN_CMD="$HERE/vna-ctl.sh down" ARCHIVE_LOG="$VNA_BENCH_DIR/vna/current.log" "$BENCH/run-all.sh"
"$BENCH/compare.sh" "$OUT/vna-$STAMP/summary.tsv" "$OUT/orthanc-$STAMP/summary.tsv" | tee "$OUT/compare-$STAMP.txt"
echo "results: $OUT/orthanc-$STAMP $OUT/vna-$STAMP"
