#!/usr/bin/env bash
# Two builds of mass serve side by side in one run: each serves all-MiniLM-L6-v2 from its own temporary registry,
# and `mass bench http` drives them in alternating rounds (requests/s, p50, server CPU per request). With KEY=1
# every request carries an API key of a tenant with no plan (authenticated and metered); without, requests are
# anonymous.
#
#   BASE=/path/to/old/mass benchmarks/compare-builds.sh            # ROUNDS=3 DURATION=8 CONCURRENCY="32 1"
#   BASE=/path/to/old/mass KEY=1 CONCURRENCY=32 benchmarks/compare-builds.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${BASE:?set BASE to the other build of mass}"
MASS=${MASS:-.build/release/mass}
MODELS=${MODELS:-models}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
CONCURRENCY=${CONCURRENCY:-32 1}
home=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$home"' EXIT
mkdir -p "$home/repository"
ln -s "$(realpath "$MODELS/all-MiniLM-L6-v2")" "$home/repository/all-MiniLM-L6-v2"
declare -A port pid header
for side in base new; do
    binary=$MASS
    [ "$side" = base ] && binary=$BASE
    reg=(--repository "$home/repository" --registry "$home/$side.sqlite" --store "$home/store-$side")
    header[$side]="X-Mass-Bench: anonymous"
    if [ -n "${KEY:-}" ]; then
        "$MASS" tenants create bench "${reg[@]}" >/dev/null
        header[$side]="Authorization: Bearer $("$MASS" keys create --tenant bench --quiet "${reg[@]}")"
    fi
    port[$side]=$([ "$side" = base ] && echo 18311 || echo 18312)
    "$binary" serve --port "${port[$side]}" "${reg[@]}" 2>"$home/$side.log" &
    pid[$side]=$!
    pids+=("$!")
    for _ in $(seq 600); do curl -sf "http://127.0.0.1:${port[$side]}/v2/health/ready" >/dev/null && break; sleep 0.1; done
done
for round in $(seq "$ROUNDS"); do
    for c in $CONCURRENCY; do
        for side in base new; do
            printf "round %s  concurrency %-3s %-5s" "$round" "$c" "$side"
            "$MASS" bench http --url "http://127.0.0.1:${port[$side]}" --model all-MiniLM-L6-v2 --concurrency "$c" \
                --duration "$DURATION" --warmup 1 --server-pid "${pid[$side]}" --header "${header[$side]}" |
                grep -E "requests/s|latency|server CPU" | paste -s -d ' ' | tr -s ' '
        done
    done
done
