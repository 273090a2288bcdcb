#!/usr/bin/env bash
# Resident memory of the archive while ingesting (issue: bounded RSS, no whole-study buffering).
#   memory.sh big     one 1 GB multi-frame instance via storescu, and the same via STOW-RS
#   memory.sh stream  ~10 GB of ordinary instances (10 synthetic datasets of ~1 GB) via 4 storescu
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
  *) echo "usage: $0 big|stream" >&2; exit 2 ;;
esac
