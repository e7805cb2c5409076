#!/usr/bin/env bash
# Serving benchmark, one run: `mass serve` and Infinity (infinity-emb 0.0.78, PyTorch CPU, its default dynamic
# batching) serve the same all-MiniLM-L6-v2 folder, one server at a time, in alternating rounds; the same load
# generator (`mass bench http`, closed loop, OpenAI /v1/embeddings, one corpus line per request) drives both
# at concurrency 1, 8 and 32. Needs `make build models`; installs Infinity into its own virtualenv (measurement
# only, never a dependency of Mass). DURATION and ROUNDS override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
VENV=${MASS_INFINITY_VENV:-$HOME/.cache/mass-infinity}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-2}
MASS=.build/release/mass
MODEL=all-MiniLM-L6-v2
if [ ! -x "$VENV/bin/infinity_emb" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "infinity-emb[server,torch]==0.0.78"
fi
wait_up() { for _ in $(seq 120); do curl -sf "$1" > /dev/null && return 0; sleep 1; done; echo "server did not start" >&2; exit 1; }
load() {  # name port
    for c in 1 8 32; do
        $MASS bench http --url "http://127.0.0.1:$2" --model $MODEL --concurrency $c --duration "$DURATION" \
            --input "$P/corpus.txt" --json | sed "s/^/$1 /"
    done
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$(mktemp)
for round in $(seq "$ROUNDS"); do
    $MASS serve --port 18080 > /tmp/mass-bench-serve.log 2>&1 &
    pid=$!
    wait_up http://127.0.0.1:18080/v2/health/ready
    load "round $round mass" 18080 | tee -a "$results"
    kill -TERM $pid; wait $pid || true
    "$VENV/bin/infinity_emb" v2 --model-id "models/$MODEL/1" --served-model-name $MODEL --url-prefix /v1 \
        --port 17997 --engine torch --device cpu > /tmp/mass-bench-infinity.log 2>&1 &
    pid=$!
    wait_up http://127.0.0.1:17997/v1/models
    load "round $round infinity" 17997 | tee -a "$results"
    kill -TERM $pid; wait $pid || true
done
# Medians over the rounds, and Mass's ratios (offline formatting only).
python3 - "$results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    words = line.split(" ", 3)
    rows.setdefault((words[2], json.loads(words[3])["concurrency"]), []).append(json.loads(words[3]))
print("\nmedians over rounds       req/s    p50 ms    p90 ms    p99 ms   errors")
for c in (1, 8, 32):
    for server in ("mass", "infinity"):
        r = rows.get((server, c), [])
        if not r: continue
        med = lambda f: statistics.median(f(x) for x in r)
        print(f"c={c:<3} {server:<10} {med(lambda x: x['requests_per_s']):12.1f} {med(lambda x: x['latency_ms']['p50']):9.1f}"
              f" {med(lambda x: x['latency_ms']['p90']):9.1f} {med(lambda x: x['latency_ms']['p99']):9.1f}"
              f" {sum(sum(x['errors'].values()) for x in r):8d}")
    m, i = rows.get(("mass", c)), rows.get(("infinity", c))
    if m and i:
        ratio = statistics.median(x["requests_per_s"] for x in m) / statistics.median(x["requests_per_s"] for x in i)
        print(f"      throughput ratio mass/infinity: {ratio:.2f}x")
PY
rm -f "$results"
