#!/usr/bin/env bash
# Fair scheduling between tenants on one model, in one run: a light tenant (concurrency 2) alone, then the same
# light tenant while a heavy tenant floods the same model at concurrency 64. Reports the light tenant's p50/p99
# alone and under the flood, and the heavy tenant's requests/s alone and with the light one. MODE=anonymous runs
# the same load without keys (one flow: first come, first served) for comparison.
#
#   benchmarks/fair-share.sh            # tenants, fair queuing
#   MODE=anonymous benchmarks/fair-share.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
MODELS=${MODELS:-models}
PORT=${PORT:-18193}
DURATION=${DURATION:-10}
MODE=${MODE:-tenants}
home=$(mktemp -d)
trap 'rm -rf "$home"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
mkdir -p "$home/repository"
ln -s "$(realpath "$MODELS/all-MiniLM-L6-v2")" "$home/repository/all-MiniLM-L6-v2"
reg=(--repository "$home/repository" --registry "$home/registry.sqlite" --store "$home/store")
heavy_header=()
light_header=()
if [ "$MODE" = tenants ]; then
    "$MASS" tenants create heavy "${reg[@]}" >/dev/null
    "$MASS" tenants create light "${reg[@]}" >/dev/null
    heavy_header=(--header "Authorization: Bearer $("$MASS" keys create --tenant heavy --quiet "${reg[@]}")")
    light_header=(--header "Authorization: Bearer $("$MASS" keys create --tenant light --quiet "${reg[@]}")")
fi
"$MASS" serve --port "$PORT" "${reg[@]}" 2>"$home/serve.log" &
pid=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v2/health/ready" >/dev/null && break; sleep 0.1; done
bench() {  # bench CONCURRENCY DURATION HEADER...
    local c=$1 d=$2
    shift 2
    "$MASS" bench http --url "http://127.0.0.1:$PORT" --model all-MiniLM-L6-v2 --concurrency "$c" --duration "$d" \
        --warmup 1 "$@" | grep -E "requests/s|latency|errors"
}
p99() { sed -n 's/.*p99 \([0-9.]*\).*/\1/p' "$1"; }
echo "-- light tenant alone (concurrency 2)"
bench 2 "$DURATION" "${light_header[@]}" | tee "$home/light-alone.txt"
echo "-- heavy tenant alone (concurrency 64)"
bench 64 "$DURATION" "${heavy_header[@]}"
echo "-- heavy (concurrency 64) and light (concurrency 2) together"
bench 64 $((DURATION + 4)) "${heavy_header[@]}" >"$home/heavy.txt" &
flood=$!
sleep 2
echo "   light:"
bench 2 "$DURATION" "${light_header[@]}" | tee "$home/light-flood.txt"
wait "$flood"
echo "   heavy:"
cat "$home/heavy.txt"
echo "-- light p99 under the flood / alone: $(awk -v a="$(p99 "$home/light-alone.txt")" \
    -v b="$(p99 "$home/light-flood.txt")" 'BEGIN { printf "%.2f", b / a }')x (the goal: at most 2x)"
