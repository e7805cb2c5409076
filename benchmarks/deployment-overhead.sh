#!/usr/bin/env bash
# The cost of a deployment with a canary and a shadow, against the same server serving the model plainly, in one
# run: one `mass serve` with a registry holding all-MiniLM-L6-v2 twice (versions 1 and 2, the same files);
# rounds alternate between no deployment (version 1 only) and a 90/10 canary with a shadow of version 2 at
# SAMPLE (default 0.1). Closed-loop load at CONCURRENCY (default 8) and paced load (one request every 0.2 s).
#
#   benchmarks/deployment-overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
MODELS=${MODELS:-models}
PORT=${PORT:-18191}
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-10}
CONCURRENCY=${CONCURRENCY:-8}
SAMPLE=${SAMPLE:-0.1}
home=$(mktemp -d)
trap 'rm -rf "$home"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
mkdir -p "$home/repository"
reg=(--repository "$home/repository" --registry "$home/registry.sqlite" --store "$home/store")
"$MASS" models register "$MODELS/all-MiniLM-L6-v2/1" --name minilm --alias production "${reg[@]}" >/dev/null
"$MASS" models register "$MODELS/all-MiniLM-L6-v2/1" --name minilm --alias candidate "${reg[@]}" >/dev/null
"$MASS" serve --port "$PORT" "${reg[@]}" 2>"$home/serve.log" &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
admin="http://127.0.0.1:$PORT/admin/v1/deployments/minilm"
load() {  # load LABEL
    echo "-- $1: closed loop, concurrency $CONCURRENCY"
    "$MASS" bench http --url "http://127.0.0.1:$PORT" --model minilm --concurrency "$CONCURRENCY" \
        --duration "$DURATION" --server-pid "$pid" | grep -E "requests/s|latency|CPU|errors"
    echo "-- $1: paced, one request every 0.2 s"
    "$MASS" bench http --url "http://127.0.0.1:$PORT" --model minilm --interval 0.2 --duration "$DURATION" \
        --server-pid "$pid" | grep -E "latency|CPU|errors"
}
for round in $(seq "$ROUNDS"); do
    echo "######## round $round"
    curl -sf -X DELETE "$admin" >/dev/null || true
    load "plain (version 1)"
    curl -sf -X PUT "$admin" -H 'content-type: application/json' -d "{\"routes\": [{\"target\": \"production\", \"weight\": 90}, {\"target\": \"2\", \"weight\": 10}], \"shadow\": {\"target\": \"2\", \"sample\": $SAMPLE}}" >/dev/null
    load "canary 90/10 + shadow at $SAMPLE"
    curl -sf "$admin/report" | head -c 400; echo
done
