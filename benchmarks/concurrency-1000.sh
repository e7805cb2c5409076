#!/usr/bin/env bash
# 1,000 connections at once against `mass serve`: throughput, latency, the server's CPU per request, and the
# server's peak thread count and RSS (sampled every 0.2 s from /proc), to show that disconnect watchers and
# offload threads are bounded (one watcher task for the server, at most OffPool.threadLimit offload threads).
# Also 64 concurrent transcriptions, whose audio is decoded on the offload pool. BASE=path/to/mass adds another
# build, run after this one.
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
PORT=${PORT:-18183}
DURATION=${DURATION:-10}
repo=$(mktemp -d)
trap 'rm -rf "$repo"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
for m in all-MiniLM-L6-v2 whisper-tiny.en; do
    mkdir -p "$repo/$m"
    ln -s "$PWD/models/$m/1" "$repo/$m/1"
done
printf '{"task": "text-embedding", "max_queue_size": 4096}\n' > "$repo/all-MiniLM-L6-v2/mass.json"
printf '{"task": "speech-recognition", "max_queue_size": 4096, "request_timeout_ms": 600000}\n' \
    > "$repo/whisper-tiny.en/mass.json"
run() {  # run LABEL BINARY
    "$2" serve --repository "$repo" --port "$PORT" > /dev/null 2>&1 &
    pid=$!
    for _ in $(seq 150); do curl -sf "127.0.0.1:$PORT/v2/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
    local label=$1
    for case in "embeddings 1000" "transcriptions 64"; do
        set -- $case
        local peak=0 rss=0
        ( while kill -0 "$pid" 2>/dev/null; do
              t=$(ls /proc/$pid/task | wc -l); r=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
              echo "$t $r"; sleep 0.2
          done ) > "$repo/samples" &
        local sampler=$!
        if [ "$1" = embeddings ]; then
            "$MASS" bench http --url "http://127.0.0.1:$PORT" --model all-MiniLM-L6-v2 --concurrency "$2" \
                --duration "$DURATION" --server-pid "$pid" | tail -4
        else
            "$MASS" bench http --url "http://127.0.0.1:$PORT" --model whisper-tiny.en --api transcriptions \
                --audio ../shared/fixtures/audio/jfk.flac --concurrency "$2" --duration "$DURATION" --warmup 1 \
                --server-pid "$pid" | tail -4
        fi
        kill "$sampler" 2>/dev/null || true
        read -r peak rss < <(sort -n "$repo/samples" | tail -1)
        echo "== $label: $1 at concurrency $2: peak threads $peak, RSS then $((rss / 1024)) MB"
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
}
run "this build" "$MASS"
if [ -n "${BASE:-}" ]; then run "base" "$BASE"; fi
