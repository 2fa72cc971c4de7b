#!/usr/bin/env bash
# Chat turns through HTTP under wrk, and GET /health at the same concurrency as the same-run
# baseline, against a real `locrit serve` on 127.0.0.1:0 with a fresh data directory. The chat
# goes to the example Locrit, which answers with the built-in `recall` responder (no LLM server:
# an instant model, so what is measured is everything but generation: HTTP, validation, two
# durable writes and a recall search per turn). bench/README.md explains the figures.
#
# Usage: bench/http_bench.sh            (BUILD=build CONNECTIONS=256 THREADS=2 DURATION=10s)
set -euo pipefail

BUILD=${BUILD:-build}
CONNECTIONS=${CONNECTIONS:-256}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
here=$(cd "$(dirname "$0")" && pwd)

command -v wrk >/dev/null || { echo "http_bench: wrk is missing (scripts/deps.sh bench)" >&2; exit 1; }
[[ -x $BUILD/locrit ]] || { echo "http_bench: build $BUILD/locrit first" >&2; exit 1; }

data=$(mktemp -d "${TMPDIR:-/tmp}/locrit-http-bench.XXXXXX")
pid=""
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    wait "$pid" || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

# Request logs off: one line per request would measure the terminal (docs/server.md).
"$BUILD/locrit" serve --listen 127.0.0.1:0 --data "$data" --no-request-log 2>"$data/server.log" &
pid=$!
for _ in $(seq 300); do
  [[ -s $data/locrit.addr ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$data/server.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s $data/locrit.addr ]] || { echo "http_bench: the server did not start" >&2; exit 1; }
addr=$(head -n1 "$data/locrit.addr")
grep -o 'example Locrit.*' "$data/server.log" || true

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== baseline: GET /health, $CONNECTIONS connections, $THREADS threads, $DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://$addr/health"
echo
echo "== chat turns: POST /api/locrits/Bob%20Technique/chat, $CONNECTIONS connections, $THREADS threads, $DURATION"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/chat.lua" \
  "http://$addr/api/locrits/Bob%20Technique/chat"
echo
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== the server's own count (/metrics):"
curl -s "http://$addr/metrics" | grep -E '^locrit_http_requests_total\{route="/(health|api/locrits/\{name\}/chat)"' || true
