#!/usr/bin/env bash
# Image classification benchmark, one run: `mass bench classify` and the same protocol on Pillow + ONNX Runtime
# fp32 (benchmarks/peer_classify.py, 2 threads), alternating for ROUNDS rounds (default 3), on the four fixture
# images (three PNGs and a JPEG). Needs `make build models` and the peer kit (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
F=${FIXTURES:-../shared/fixtures}/image
FILES=${FILES:-"$F/chelsea.png $F/coffee.png $F/astronaut.png $F/rocket.jpg"}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
results=$(mktemp)
for round in $(seq "${ROUNDS:-3}"); do
    echo "round $round mass $(.build/release/mass bench classify --json $FILES)" | tee -a "$results"
    echo "round $round peer $($PY benchmarks/peer_classify.py $FILES)" | tee -a "$results"
done
# Medians over the rounds and Mass/peer ratios (offline formatting only).
python3 - "$results" <<'PY'
import json, statistics, sys
rows = {"mass": [], "peer": []}
for line in open(sys.argv[1]):
    w = line.split(" ", 3)
    rows[w[2]].append(json.loads(w[3]))
print("\nmedians (images/s)     mass      peer    ratio")
for key in ("model_b1", "model_b16", "e2e_b1", "e2e_b16"):
    m = statistics.median(r[key + "_images_per_s"] for r in rows["mass"])
    p = statistics.median(r[key + "_images_per_s"] for r in rows["peer"])
    print(f"{key:<18} {m:9.1f} {p:9.1f} {m / p:8.2f}x")
PY
rm -f "$results"
