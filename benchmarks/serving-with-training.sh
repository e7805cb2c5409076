#!/usr/bin/env bash
# Serving latency with and without a training job on the same machine (issue 16, point 6), in one run: MiniLM
# embeddings served by `mass serve` under a paced load (CONCURRENCY connections, one request every INTERVAL
# seconds each), first alone, then while `mass worker` fine-tunes MiniLM on the Rotten Tomatoes snippets with each
# of the WORKERS settings ("threads nice" pairs; default: one thread at nice 19, then two threads at nice 0, the
# unprotected case). Prints the load's requests/s, p50 and p99 for each, and the training steps the job made
# during the measurement (from its log).
#
#   make build models datasets && benchmarks/serving-with-training.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
PORT=${PORT:-18297}
DURATION=${DURATION:-20}
CONCURRENCY=${CONCURRENCY:-2}
INTERVAL=${INTERVAL:-0.05}
WORKERS=${WORKERS:-"1 19;2 0"}
home=$(mktemp -d /tmp/mass-serving-training.XXXXXX)
cleanup() {
    [ -n "${worker:-}" ] && kill "$worker" 2>/dev/null || true
    [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$home"
}
trap cleanup EXIT
[ -f datasets/rotten-tomatoes-full.csv ] || { echo "run make datasets first" >&2; exit 1; }
mkdir -p "$home/repository"
ln -s "$(realpath models/all-MiniLM-L6-v2)" "$home/repository/all-MiniLM-L6-v2"
"$MASS" serve --port "$PORT" --repository "$home/repository" --registry "$home/serve.sqlite" \
    --store "$home/serve-store" 2>"$home/serve.log" &
server=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
jobs=(--registry "$home/jobs.sqlite" --store "$home/jobs-store")
# A long fine-tuning job: the measurement ends long before it does.
sed -e 's/"epochs": *[0-9]*/"epochs": 20/' examples/train/rotten-tomatoes-full-finetune.json >"$home/job.json"

load() {
    "$MASS" bench http --url "http://127.0.0.1:$PORT" --model all-MiniLM-L6-v2 --concurrency "$CONCURRENCY" \
        --interval "$INTERVAL" --duration "$DURATION" --warmup 2 | grep -E "requests/s|latency|errors"
}
steps() { grep -o 'step [0-9]*' "$1" | tail -1 | cut -d' ' -f2; }

echo "-- serving alone (concurrency $CONCURRENCY, a request every $INTERVAL s each)"
load
IFS=';' read -ra settings <<<"$WORKERS"
for setting in "${settings[@]}"; do
    read -r threads nice <<<"$setting"
    id=$("$MASS" jobs submit "$home/job.json" "${jobs[@]}" | sed -n 's/^  "id" : \([0-9]*\),/\1/p')
    "$MASS" worker "${jobs[@]}" --work "$home/work" --threads "$threads" --nice "$nice" --heartbeat 1 \
        2>"$home/worker-$id.log" &
    worker=$!
    # Measure once the job trains (past loading and its first steps).
    for _ in $(seq 1200); do grep -q "step" "$home/worker-$id.log" && break; sleep 0.1; done
    before=$(steps "$home/worker-$id.log")
    started=$(date +%s.%N)
    echo "-- serving while a fine-tuning job trains (worker --threads $threads --nice $nice)"
    load
    after=$(steps "$home/worker-$id.log")
    seconds=$(echo "$(date +%s.%N) - $started" | bc)
    echo "   training: steps $before -> $after in ${seconds%.*} s (progress lines come every 5 s)"
    kill "$worker"
    wait "$worker" 2>/dev/null || true
    worker=
    "$MASS" jobs cancel "$id" "${jobs[@]}" >/dev/null 2>&1 || true
done
