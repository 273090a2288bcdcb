#!/usr/bin/env bash
# C-MOVE and C-GET of the bench dataset's largest study from this archive and from the reference
# Orthanc, alternating, with the CPU time of each side: the receiver (storescp for C-MOVE, getscu
# for C-GET) and the sending archive. The receiver is one single-threaded DCMTK process, and
# C-STORE sub-operations go one at a time (neither tool offers an asynchronous operations
# window), so a retrieval can never take less wall time than the receiver's own CPU time: that is
# the floor this script prints beside the time a ratio target asks for.
#   retrieve-floor.sh [RUNS]        (default 8)
# Needs both archives up with the study stored (it stores it when absent): the archive at
# VNA_AET@127.0.0.1:VNA_PORT (VNA, 11112, pid in $VNA_BENCH_DIR/vna/vna.pid as vna-ctl.sh leaves
# it), Orthanc at ORTHANC_AET@127.0.0.1:ORTHANC_PORT (ORTHANC, 4242) as ../shared/bench/orthanc-up.sh
# starts it, both knowing BENCHSCU@127.0.0.1:11113 as a move destination.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BENCH="${BENCH:-$HERE/../../../shared/bench}"
: "${VNA_BENCH_DIR:=/tmp/vna-bench}" "${VNA_AET:=VNA}" "${VNA_PORT:=11112}" "${ORTHANC_AET:=ORTHANC}" "${ORTHANC_PORT:=4242}"
export VNA_BENCH_DIR TCP_NODELAY=1
. "$BENCH/lib.sh"
RUNS="${1:-8}"
IFS=$'\t' read -r STUDY N _BYTES DIR < <(largest_study)
WORK="$VNA_BENCH_DIR/work-floor"; rm -rf "$WORK"; mkdir -p "$WORK/move" "$WORK/get"
VNA_PID=$(cat "$VNA_BENCH_DIR/vna/vna.pid")
ORTHANC_PID=$(pgrep -x Orthanc | head -1)
[ -n "$ORTHANC_PID" ] || die "Orthanc is not running (../shared/bench/orthanc-up.sh)"
for t in "$VNA_AET $VNA_PORT" "$ORTHANC_AET $ORTHANC_PORT"; do
  set -- $t
  storescu -aet BENCHSCU -aec "$1" +sd +r 127.0.0.1 "$2" "$VNA_BENCH_DIR/dataset/$DIR" > "$WORK/store-$1.log" 2>&1 || die "storing $DIR into $1 failed"
done
SCP_PID=$(start_bg "$WORK/storescp.log" storescp -aet BENCHSCU -od "$WORK/move" 11113)
trap 'stop_pid "$SCP_PID" storescp' EXIT
wait_port 127.0.0.1 11113 10 || die "storescp did not start"
TK=$(getconf CLK_TCK)
cpu_ms() { awk -v tk="$TK" '{print ($14+$15)*1000/tk}' "/proc/$1/stat"; }

# one KIND SERVER_NAME AET PORT PID: prints "kind server wall_s receiver_cpu_ms server_cpu_ms received"
one() {
  local kind=$1 name=$2 aet=$3 port=$4 pid=$5 s0 r0 t0 t1 s1 r1 got
  s0=$(cpu_ms "$pid"); r0=$(cpu_ms "$SCP_PID")
  t0=$(date +%s.%N)
  if [ "$kind" = move ]; then
    movescu -S -aet BENCHSCU -aec "$aet" -aem BENCHSCU -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$STUDY" 127.0.0.1 "$port" > "$WORK/last.log" 2>&1
    t1=$(date +%s.%N); sleep 0.2
    r1=$(cpu_ms "$SCP_PID"); rcpu=$(awk -v a="$r0" -v b="$r1" 'BEGIN{print b-a}')
  else
    # getscu is the receiver: its own user+system time.
    /usr/bin/time -f '%U %S' -o "$WORK/getscu.time" getscu -S -aet BENCHSCU -aec "$aet" -od "$WORK/get" \
      -k QueryRetrieveLevel=STUDY -k StudyInstanceUID="$STUDY" 127.0.0.1 "$port" > "$WORK/last.log" 2>&1
    t1=$(date +%s.%N)
    rcpu=$(awk '{print ($1+$2)*1000}' "$WORK/getscu.time")
  fi
  s1=$(cpu_ms "$pid")
  got=$(find "$WORK/$kind" -type f | wc -l); rm -rf "${WORK:?}/$kind"/*
  printf '%s %s %.3f %.0f %.0f %d\n' "$kind" "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" "$rcpu" \
    "$(awk -v a="$s0" -v b="$s1" 'BEGIN{print b-a}')" "$got"
}
one move vna "$VNA_AET" "$VNA_PORT" "$VNA_PID" > /dev/null   # warm both
one move orthanc "$ORTHANC_AET" "$ORTHANC_PORT" "$ORTHANC_PID" > /dev/null
: > "$WORK/runs.txt"
for _ in $(seq 1 "$RUNS"); do
  for kind in move get; do
    one "$kind" vna "$VNA_AET" "$VNA_PORT" "$VNA_PID" >> "$WORK/runs.txt"
    one "$kind" orthanc "$ORTHANC_AET" "$ORTHANC_PORT" "$ORTHANC_PID" >> "$WORK/runs.txt"
  done
done
echo "# $DIR: $N instances, $RUNS runs each, alternating; medians (min-max)"
echo "| retrieval | archive | wall s | receiver CPU ms | sender CPU ms | received |"
echo "|---|---|---|---|---|---|"
med() { sort -n | awk '{a[NR]=$1} END{m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s (%s-%s)", m, a[1], a[NR]}'; }
for kind in move get; do
  for name in vna orthanc; do
    rows=$(awk -v k="$kind" -v n="$name" '$1==k && $2==n' "$WORK/runs.txt")
    printf '| %s | %s | %s | %s | %s | %s |\n' "$kind" "$name" "$(awk '{print $3}' <<<"$rows" | med)" \
      "$(awk '{print $4}' <<<"$rows" | med)" "$(awk '{print $5}' <<<"$rows" | med)" "$(awk '{print $6}' <<<"$rows" | sort -u | tr '\n' ' ')"
  done
  o=$(awk -v k="$kind" '$1==k && $2=="orthanc"{print $3}' "$WORK/runs.txt" | med | cut -d' ' -f1)
  v=$(awk -v k="$kind" '$1==k && $2=="vna"{print $3}' "$WORK/runs.txt" | med | cut -d' ' -f1)
  r=$(awk -v k="$kind" '$1==k && $2=="vna"{print $4}' "$WORK/runs.txt" | med | cut -d' ' -f1)
  awk -v k="$kind" -v o="$o" -v v="$v" -v r="$r" 'BEGIN{printf "# %s: ratio %.2fx; 1.5x Orthanc needs %.3f s; receiver CPU alone (floor) %.3f s = %.0f%% of it\n", k, o/v, o/1.5, r/1000, 100*(r/1000)/(o/1.5)}'
done
