#!/usr/bin/env bash
# Resident memory of the archive while ingesting (issue: bounded RSS, no whole-study buffering).
#   memory.sh big     one 1 GB multi-frame instance via storescu, and the same via STOW-RS
#   memory.sh stream  ~10 GB of ordinary instances (10 synthetic datasets of ~1 GB) via 4 storescu
#   memory.sh retrieve  one ~5 GB study: WADO-RS (time to first byte), C-MOVE, C-GET
# Prints the archive's RSS at start and its peak (VmHWM) after each phase.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
: "${VNA_BENCH_DIR:=/tmp/vna-bench}" "${PY:=/usr/bin/python3}"
export VNA_BENCH_DIR TCP_NODELAY=1
CTL="$HERE/vna-ctl.sh"
DIR="$VNA_BENCH_DIR/memory"; mkdir -p "$DIR"
pid() { cat "$VNA_BENCH_DIR/vna/vna.pid"; }
rss() { awk '/VmRSS/{print $2/1024 " MiB"}' "/proc/$(pid)/status"; }
hwm() { awk '/VmHWM/{print $2/1024 " MiB"}' "/proc/$(pid)/status"; }

case "${1:-}" in
  big)
    if [ ! -f "$DIR/big/done" ]; then
      rm -rf "$DIR/big"
      "$PY" "$HERE/../../test/support/gen-studies.py" "$DIR/big" \
        '[{"patientId":"BIG","patientName":"Big^Multiframe","studyUid":"2.25.1001","studyDate":"20240101","series":[{"seriesUid":"2.25.1001.1","modality":"CT","instances":1,"rows":512,"cols":512,"frames":2048}]}]' >/dev/null
      touch "$DIR/big/done"
    fi
    f=$(find "$DIR/big" -name '*.dcm'); echo "file: $f ($(stat -c %s "$f") bytes)"
    "$CTL" reset; echo "rss_start=$(rss)"
    t=$(date +%s.%N); storescu -aec VNA -aet BENCHSCU 127.0.0.1 11112 "$f"; echo "storescu_s=$(echo "$(date +%s.%N) - $t" | bc)"
    echo "cstore_1GB_peak_rss=$(hwm)"
    "$CTL" reset; echo "rss_start=$(rss)"
    b="$DIR/big/body.mime"
    { printf -- '--BIG\r\nContent-Type: application/dicom\r\n\r\n'; cat "$f"; printf -- '\r\n--BIG--\r\n'; } > "$b"
    curl -s -o /dev/null -w 'stow_http=%{http_code} stow_s=%{time_total}\n' -H 'Expect:' \
      -H 'Content-Type: multipart/related; type="application/dicom"; boundary=BIG' -X POST -T "$b" http://127.0.0.1:8080/dicom-web/studies
    echo "stow_1GB_peak_rss=$(hwm)"
    rm -f "$b" ;;
  stream)
    for s in $(seq 1 10); do
      [ -f "$DIR/ds$s/manifest.tsv" ] || "$PY" /work/shared/bench/gen-dataset.py --out "$DIR/ds$s" --seed "$((1000 + s))" --force >/dev/null
    done
    echo "dataset_bytes=$(du -sb "$DIR"/ds* | awk '{s+=$1} END{print s}')"
    "$CTL" reset; echo "rss_start=$(rss)"
    t=$(date +%s.%N)
    for s in $(seq 1 10); do
      ls -d "$DIR/ds$s"/S0* | xargs -P 4 -I{} storescu -aec VNA -aet BENCHSCU +sd +r -nh 127.0.0.1 11112 {}
      echo "after_dataset_$s rss=$(rss) peak=$(hwm)"
    done
    echo "stream_s=$(echo "$(date +%s.%N) - $t" | bc)"
    echo "stream_10GB_peak_rss=$(hwm)" ;;
  retrieve)
    # One ~5 GB study (10 multi-frame instances of 512 MiB): WADO-RS, C-MOVE and C-GET of it.
    if [ ! -f "$DIR/study5g/done" ]; then
      rm -rf "$DIR/study5g"
      "$PY" "$HERE/../../test/support/gen-studies.py" "$DIR/study5g" \
        '[{"patientId":"HUGE","patientName":"Huge^Study","studyUid":"2.25.5005","studyDate":"20240101","series":[{"seriesUid":"2.25.5005.1","modality":"CT","instances":10,"rows":512,"cols":512,"frames":1024}]}]' >/dev/null
      touch "$DIR/study5g/done"
    fi
    echo "study_bytes=$(du -sb "$DIR/study5g" | cut -f1)"
    "$CTL" reset
    storescu -aec VNA -aet BENCHSCU +sd +r +sp "*.dcm" 127.0.0.1 11112 "$DIR/study5g"
    for _ in $(seq 1 100); do
      n=$(curl -s "http://127.0.0.1:8080/dicom-web/studies/2.25.5005/instances" | grep -o '"00080018"' | wc -l)
      [ "$n" = 10 ] && break; sleep 0.2
    done
    echo "indexed_instances=$n rss_before_retrieve=$(rss)"
    curl -s -o /dev/null -H 'Accept: multipart/related; type="application/dicom"; transfer-syntax=*' \
      -w 'wado_http=%{http_code} wado_bytes=%{size_download} wado_ttfb_s=%{time_starttransfer} wado_total_s=%{time_total}\n' \
      http://127.0.0.1:8080/dicom-web/studies/2.25.5005
    echo "wado_peak_rss=$(hwm)"
    rm -rf "$DIR/recv"; mkdir -p "$DIR/recv"
    storescp -aet BENCHSCU -od "$DIR/recv" +xa 11113 & scp=$!
    sleep 0.5
    t=$(date +%s.%N); movescu -S -aet BENCHSCU -aec VNA -aem BENCHSCU -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=2.25.5005 127.0.0.1 11112
    echo "cmove_s=$(echo "$(date +%s.%N) - $t" | bc) cmove_files=$(ls "$DIR/recv" | wc -l) cmove_peak_rss=$(hwm)"
    kill "$scp"; rm -rf "$DIR/recv"; mkdir -p "$DIR/recv"
    t=$(date +%s.%N); getscu -S -aet BENCHSCU -aec VNA -od "$DIR/recv" -k QueryRetrieveLevel=STUDY -k StudyInstanceUID=2.25.5005 127.0.0.1 11112
    echo "cget_s=$(echo "$(date +%s.%N) - $t" | bc) cget_files=$(ls "$DIR/recv" | wc -l) cget_peak_rss=$(hwm)"
    rm -rf "$DIR/recv" ;;
  *) echo "usage: $0 big|stream|retrieve" >&2; exit 2 ;;
esac
