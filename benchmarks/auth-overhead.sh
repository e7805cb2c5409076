#!/usr/bin/env bash
# What authentication and metering cost per request, in one run: one server (`--auth off`, so that a request
# without a key is served anonymously and a request with a valid key is authenticated, checked against its plan's
# limits, charged and metered), the same MiniLM load with and without a key, in alternating rounds, at
# concurrency 1 (latency) and 32 (throughput). The key's tenant is on a plan with generous limits, so every
# request goes through the whole reserve/settle path without being refused.
#
#   benchmarks/auth-overhead.sh        # ROUNDS=2 DURATION=8 by default
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
MODELS=${MODELS:-models}
PORT=${PORT:-18195}
DURATION=${DURATION:-8}
ROUNDS=${ROUNDS:-2}
home=$(mktemp -d)
trap 'rm -rf "$home"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
mkdir -p "$home/repository"
ln -s "$(realpath "$MODELS/all-MiniLM-L6-v2")" "$home/repository/all-MiniLM-L6-v2"
reg=(--repository "$home/repository" --registry "$home/registry.sqlite" --store "$home/store")
"$MASS" plans set generous "${reg[@]}" --json \
    '{"limits": [{"kind": "requests", "limit": 100000000, "window": "minute"},
                 {"kind": "tokens", "limit": 1000000000, "window": "day"}], "max_concurrent": 1000}' >/dev/null
"$MASS" tenants create bench --plan generous "${reg[@]}" >/dev/null
key=$("$MASS" keys create --tenant bench --quiet "${reg[@]}")
"$MASS" serve --port "$PORT" --auth off "${reg[@]}" 2>"$home/serve.log" &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
bench() {  # bench CONCURRENCY HEADER...
    local c=$1
    shift
    "$MASS" bench http --url "http://127.0.0.1:$PORT" --model all-MiniLM-L6-v2 --concurrency "$c" \
        --duration "$DURATION" --warmup 1 --server-pid "$pid" "$@" | grep -E "requests/s|latency|errors|server CPU"
}
for round in $(seq "$ROUNDS"); do
    for c in 1 32; do
        echo "-- round $round, concurrency $c, anonymous (no auth, no metering)"
        bench "$c"
        echo "-- round $round, concurrency $c, with a key (auth, limits, metering)"
        bench "$c" --header "Authorization: Bearer $key"
    done
done
kill "$pid"
wait "$pid" || true
echo "-- usage records written: $("$MASS" usage --records --since 1h "${reg[@]}" | tail -n +2 | wc -l)"
