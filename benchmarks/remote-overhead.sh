#!/usr/bin/env bash
# What serving a provider through a service-type model costs, in one run: a provider (`mass serve` with
# MiniLM) and a front server whose model "svc" is that provider behind `remote` (OpenAI embeddings API, pooled
# keep-alive connections, breaker, retries); the same load sent straight to the provider and through the front,
# in alternating rounds, at concurrency 1 (latency) and 32 (throughput). Both servers share this machine's
# cores, so the front's CPU is taken from the provider's: the throughput ratio includes that.
#
#   benchmarks/remote-overhead.sh        # ROUNDS=2 DURATION=8 by default
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
MODELS=${MODELS:-models}
PORT=${PORT:-18196}
FRONT=${FRONT:-18197}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-2}
home=$(mktemp -d)
trap 'rm -rf "$home"; kill ${provider:-} ${front:-} 2>/dev/null || true' EXIT
mkdir -p "$home/provider" "$home/front/svc"
ln -s "$(realpath "$MODELS/all-MiniLM-L6-v2")" "$home/provider/all-MiniLM-L6-v2"
cat >"$home/front/svc/mass.json" <<EOF
{"task": "text-embedding",
 "remote": {"api": "openai-embeddings", "url": "http://127.0.0.1:$PORT", "model": "all-MiniLM-L6-v2"}}
EOF
"$MASS" serve --port "$PORT" --repository "$home/provider" --registry "$home/p.sqlite" --store "$home/p" \
    2>"$home/provider.log" &
provider=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
"$MASS" serve --port "$FRONT" --repository "$home/front" --registry "$home/f.sqlite" --store "$home/f" \
    2>"$home/front.log" &
front=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$FRONT/v2/models/svc/ready" >/dev/null && break; sleep 0.1; done
bench() {  # bench PORT MODEL CONCURRENCY PID
    "$MASS" bench http --url "http://127.0.0.1:$1" --model "$2" --concurrency "$3" --duration "$DURATION" \
        --warmup 1 --server-pid "$4" | grep -E "requests/s|latency|errors|server CPU"
}
for round in $(seq "$ROUNDS"); do
    for c in 1 32; do
        echo "-- round $round, concurrency $c, straight to the provider"
        bench "$PORT" all-MiniLM-L6-v2 "$c" "$provider"
        echo "-- round $round, concurrency $c, through the front's service-type model (CPU: the front's)"
        bench "$FRONT" svc "$c" "$front"
    done
done
echo "-- the front's calls to the provider:"
curl -s "http://127.0.0.1:$FRONT/metrics" | grep -E '^mass_remote_calls_total'
