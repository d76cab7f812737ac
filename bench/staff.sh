#!/usr/bin/env bash
# Cached staff verification against /healthz of the same server, in the same run.
#
#   bench/staff.sh [sqlite|postgres]
#
# Needs wrk (Debian package `wrk`) and oha (`cargo install oha`). Starts the release binary
# on the embedded default (sandbox FRMR in-process) with the chosen database, warms the cache
# with one lookup, then:
#   1. closed loop, wrk -t1 -c32 -d15s: the most requests/s each endpoint sustains;
#   2. open loop, oha -q 1000 -z 20s --latency-correction: p50/p99 at a fixed 1,000 requests/s;
#   3. the server's peak resident memory (VmHWM) after both.
# Load generator and server share the machine, so the ratios are the figures to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
port=${BENCH_PORT:-18480}
cargo build --release --quiet
work=$(mktemp -d)
export EGISZ__API__LISTEN=127.0.0.1:$port EGISZ__LOG__LEVEL=warn EGISZ__SANDBOX__API_KEY_FILE=$work/key
case $backend in
  sqlite) export EGISZ__DATABASE__URL=sqlite://$work/bench.db ;;
  postgres)
    db=egisz_bench_$$
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db"
    export EGISZ__DATABASE__URL=postgres://postgres@127.0.0.1:5432/$db ;;
  *) echo "usage: $0 [sqlite|postgres]" >&2; exit 2 ;;
esac
./target/release/egisz-gateway serve 2>"$work/log" &
pid=$!
cleanup() {
  status=$?
  [ $status -eq 0 ] || { echo "failed; server log:" >&2; cat "$work/log" >&2; }
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ "$backend" = postgres ]; then psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"; fi
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.2; done
key=$(cat "$work/key")
base=http://127.0.0.1:$port
staff="$base/api/v1/staff/20311784514?organization=1.2.643.5.1.13.13.12.2.42.2917&position=73&date=2023-08-18"
curl -sf -H "Authorization: Bearer $key" "$staff" | grep -q '"verdict":"verified"'

echo "== $backend, $(nproc) cores, $(uname -m); $(date -u +%F)"
closed() { wrk -t1 -c32 -d15s --latency "$@" | awk '/Requests\/sec/ {print $2}'; }
h_rps=$(closed "$base/healthz")
s_rps=$(closed -H "Authorization: Bearer $key" "$staff")
echo "closed loop (wrk -t1 -c32 -d15s): healthz ${h_rps} req/s, cached staff ${s_rps} req/s, ratio $(echo "$s_rps / $h_rps" | bc -l | cut -c1-4)"
open() {
  oha --no-tui --output-format json -q 1000 -z 20s -c 32 --latency-correction "$@" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); p=d["latencyPercentiles"]; s=d["summary"]; print("rps %.0f  p50 %.2f ms  p99 %.2f ms  success %.4f" % (s["requestsPerSec"], p["p50"]*1000, p["p99"]*1000, s["successRate"]))'
}
echo "open loop 1000 req/s, healthz:      $(open "$base/healthz")"
echo "open loop 1000 req/s, cached staff: $(open -H "Authorization: Bearer $key" "$staff")"
echo "server peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
