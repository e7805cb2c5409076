#!/usr/bin/env bash
# Image classification in int8, one run: Mass's EfficientNet-Lite0 folder compressed to static int8 (mass compress
# --int8, calibrated on the four fixture images) against ONNX Runtime's static int8 of the same network calibrated
# on the same images (benchmarks/peers/quantize_effnet_ort.py: QDQ, per-channel, MinMax) and ONNX Runtime fp32,
# `mass bench classify` and benchmarks/peer_classify.py (same protocol, 2 threads) alternating for ROUNDS rounds
# (default 3). Then Mass fp32 for int8's own speed-up. Needs `make build models` and the peer kit.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
F=${FIXTURES:-../shared/fixtures}/image
FILES="$F/chelsea.png $F/coffee.png $F/astronaut.png $F/rocket.jpg"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/images" && cp $FILES "$WORK/images/"
.build/release/mass compress --model models/efficientnet-lite0/1 --int8 --calibration "$WORK/images" \
    --out "$WORK/int8" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("mass top-1 agreement with fp32:", r["top1_agreement"])'
$PY benchmarks/peers/quantize_effnet_ort.py "$WORK/ort_int8.onnx" $FILES 2>/dev/null
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$WORK/results"
for round in $(seq "${ROUNDS:-3}"); do
    echo "round $round mass_int8 $(.build/release/mass bench classify --json --model "$WORK/int8" $FILES)" >>"$results"
    echo "round $round ort_int8 $($PY benchmarks/peer_classify.py --onnx "$WORK/ort_int8.onnx" $FILES)" >>"$results"
    echo "round $round ort_fp32 $($PY benchmarks/peer_classify.py $FILES)" >>"$results"
    echo "round $round mass_fp32 $(.build/release/mass bench classify --json $FILES)" >>"$results"
done
# Medians over the rounds and ratios (offline formatting only).
python3 - "$results" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w = line.split(" ", 3)
    rows.setdefault(w[2], []).append(json.loads(w[3]))
names = ["mass_int8", "ort_int8", "ort_fp32", "mass_fp32"]
print("\nmedians (images/s)  " + "".join(f"{n:>11}" for n in names) + "  int8/ort_int8  int8/ort_fp32  int8/mass_fp32")
for key in ("model_b1", "model_b16", "e2e_b1", "e2e_b16"):
    m = {n: statistics.median(r[key + "_images_per_s"] for r in rows[n]) for n in names}
    print(f"{key:<19} " + "".join(f"{m[n]:11.1f}" for n in names)
          + f"  {m['mass_int8'] / m['ort_int8']:12.2f}x  {m['mass_int8'] / m['ort_fp32']:12.2f}x  {m['mass_int8'] / m['mass_fp32']:13.2f}x")
PY
