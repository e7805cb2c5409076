#!/usr/bin/env bash
# The registry walk-through, recorded under a running load generator: register a second version, canary it at
# 10 % with a shadow, read the shadow report, promote, roll back; then the load generator's error count.
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
PORT=${PORT:-18195}
home=$(mktemp -d)
trap 'rm -rf "$home"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
mkdir -p "$home/repository"
reg=(--repository "$home/repository" --registry "$home/registry.sqlite" --store "$home/store" --actor ana)
step() { echo; echo "\$ mass $*"; "$MASS" "$@" "${reg[@]}"; }
run() { echo; echo "\$ mass $*"; "$MASS" "$@"; }
step models register models/all-MiniLM-L6-v2/1 --name minilm --alias production | grep -E '"version"|"task"'
"$MASS" serve --port "$PORT" "${reg[@]:0:6}" 2>"$home/serve.log" &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
echo; echo "(load: mass bench http, 4 connections, 40 s, in the background)"
"$MASS" bench http --url "http://127.0.0.1:$PORT" --model minilm --concurrency 4 --duration 40 --warmup 0 \
    > "$home/load.txt" &
load=$!
sleep 3
step models register models/all-MiniLM-L6-v2/1 --name minilm --parent 1 --description "the candidate" | grep -E '"version"|"parent"'
step deploy set minilm --route production=90 --route 2=10 --shadow 2=0.5 --reason "canary at 10 %" >/dev/null
sleep 8
run deploy report minilm --server "http://127.0.0.1:$PORT"
step models promote minilm 2 --reason "canary held"
step deploy set minilm --route production=100 >/dev/null
sleep 6
step models rollback minilm --reason "drill"
sleep 6
wait "$load"
echo; echo "(the load generator, across all of it)"
cat "$home/load.txt"
step models history minilm
curl -s "http://127.0.0.1:$PORT/metrics" | grep -E '^mass_requests_total\{model="minilm"'
