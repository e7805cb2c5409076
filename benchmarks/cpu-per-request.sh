#!/usr/bin/env bash
# CPU per request of `mass serve` (every thread, user + system, from /proc) beside latency and throughput, for a
# light paced load and for saturation; optionally for a second build in the same run (BASE=path/to/mass).
# The model's own compute for the same inputs (one thread, in process) is printed first as the yardstick.
#
#   benchmarks/cpu-per-request.sh                 # this build
#   BASE=/tmp/base/.build/release/mass benchmarks/cpu-per-request.sh   # and another build, alternating
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
MODELS=${MODELS:-models}
PORT=${PORT:-18181}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
echo "Hello world" > "$work/short.txt"
for i in $(seq 300); do echo "Hello world"; done > "$work/short300.txt"
"$MASS" bench http --help >/dev/null
# The 8 built-in sentences of mass bench http, 300 lines, for the yardstick.
python3 - "$work/mixed300.txt" <<'PY'
import sys
s = ["Hello world", "A man is eating food.", "The new movie is awesome and I would watch it again.",
     "Two dogs play in the snow near a frozen lake while their owners watch from a bench.",
     "How do I reset my password?", "The quarterly report shows revenue growth in every region but one.",
     "Il pleut à Paris.", "Machine learning models need careful evaluation before they go into production."]
open(sys.argv[1], "w").write("".join(s[i % 8] + "\n" for i in range(304)))
PY
head -48 "$work/short300.txt" > "$work/short48.txt"
head -48 "$work/mixed300.txt" > "$work/mixed48.txt"
echo "== the model's own compute, one thread, batch 1 (mass bench embed --threads 1): back to back, and 0.2 s apart"
for corpus in short mixed; do
    echo "-- $corpus, back to back"
    "$MASS" bench embed --model "$MODELS/all-MiniLM-L6-v2/1" --corpus "$work/${corpus}300.txt" --batch-size 1 --threads 1 \
        | grep -E "latency_ms"
    echo "-- $corpus, 0.2 s apart"
    "$MASS" bench embed --model "$MODELS/all-MiniLM-L6-v2/1" --corpus "$work/${corpus}48.txt" --batch-size 1 --threads 1 \
        --pause-ms 200 --runs 1 | grep -E "latency_ms"
done
run() {  # run LABEL BINARY
    "$2" serve --repository "$MODELS" --port "$PORT" > "$work/serve.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
    local url="http://127.0.0.1:$PORT" m=all-MiniLM-L6-v2
    echo "== $1: paced, one 'Hello world' every 0.2 s"
    "$MASS" bench http --url "$url" --model $m --interval 0.2 --duration "$DURATION" --server-pid $pid --input "$work/short.txt" | tail -3
    echo "== $1: paced, the 8 sentences in turn, one every 0.2 s"
    "$MASS" bench http --url "$url" --model $m --interval 0.2 --duration "$DURATION" --server-pid $pid | tail -3
    echo "== $1: closed loop, concurrency 1"
    "$MASS" bench http --url "$url" --model $m --concurrency 1 --duration "$DURATION" --server-pid $pid | tail -4
    echo "== $1: saturation, concurrency 32"
    "$MASS" bench http --url "$url" --model $m --concurrency 32 --duration "$DURATION" --server-pid $pid | tail -4
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
for round in $(seq "$ROUNDS"); do
    echo "######## round $round"
    run "this build" "$MASS"
    if [ -n "${BASE:-}" ]; then run "base" "$BASE"; fi
done
