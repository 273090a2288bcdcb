#!/usr/bin/env bash
# The archive's test command (README: `npm test`). Installs what the tests need, makes sure
# PostgreSQL and Redis answer on 127.0.0.1, type-checks, builds, and runs unit + end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[test] %s\n' "$*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

# --- Debian packages the tests drive: dcmtk tools, pydicom (test data + its test files), python3-numpy, Orthanc (+ its DICOMweb plugin).
pkgs=()
command -v storescu >/dev/null && command -v findscu >/dev/null && command -v dcmdump >/dev/null || pkgs+=(dcmtk)
[ -d /usr/lib/python3/dist-packages/pydicom/data/test_files ] || pkgs+=(python3-pydicom)
/usr/bin/python3 -c 'import numpy' 2>/dev/null || pkgs+=(python3-numpy)
command -v redis-server >/dev/null || pkgs+=(redis-server)
# Orthanc: the legacy archive of the migration e2e tests (Debian's /usr/sbin/Orthanc).
[ -x /usr/sbin/Orthanc ] || pkgs+=(orthanc)
# Orthanc's DICOMweb plugin: the legacy archive of the DICOMweb migration e2e tests.
[ -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ] || pkgs+=(orthanc-dicomweb)
command -v pg_ctlcluster >/dev/null || command -v pg_ctl >/dev/null || pkgs+=(postgresql)
if [ ${#pkgs[@]} -gt 0 ]; then
  log "installing ${pkgs[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi

# --- npm packages
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "npm ci"
  npm ci --no-audit --no-fund
fi

# --- PostgreSQL and Redis on 127.0.0.1 (started where absent)
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  if command -v pg_ctlcluster >/dev/null; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  fi
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.2; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.2; done
fi

export TCP_NODELAY=1
export VNA_TEST_PG_URL="${VNA_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export VNA_TEST_REDIS_URL="${VNA_TEST_REDIS_URL:-redis://127.0.0.1:6379}"

log "check (type-check + lint)"
npm run check --silent
log "build"
npm run build --silent
log "tests"
report="$(mktemp)"
rc=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || rc=$?
# A plain closing line that any CI reader understands.
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));' "$report" || true
rm -f "$report"
exit "$rc"
