#!/usr/bin/env bash
# all-mpnet-base-v2 on Mass against ONNX Runtime fp32 (2 threads) running the same weights, one run, in process
# (the protocol of compare-embed.sh: tokenized first, warm-up, median of 3 passes), alternating rounds (ROUNDS,
# default 2), on every 4th line of the peer corpus (250 texts; a full pass of MPNet takes ~40 s), truncated at 384
# tokens as the model's sentence-transformers config says. ONNX Runtime runs the export of
# benchmarks/peers/export_sentence_onnx.py (transformer + mean pooling + normalisation in one graph), made once
# into $ONNX. Batch 1 also runs Mass in int8 (its cosine to float32 printed). Needs `make build models-extra` and the peer kit (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
M=${MODELS_EXTRA:-models-extra}/all-mpnet-base-v2/1
ONNX=${ONNX:-${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/all-mpnet-base-v2-onnx}
MASS=.build/release/mass
[ -f "$ONNX/model.onnx" ] || "$PY" benchmarks/peers/export_sentence_onnx.py "$M" "$ONNX"
corpus=$(mktemp)
trap 'rm -f "$corpus"' EXIT
awk 'NR % 4 == 1' "$P/corpus.txt" > "$corpus"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(wc -l < "$corpus") texts"
for round in $(seq "${ROUNDS:-2}"); do
    echo "== round $round: batch 1 (latency)"
    $MASS bench embed --model "$M" --corpus "$corpus" --batch-size 1 | grep -E 'sentences|latency|gflops'
    "$PY" benchmarks/peer_embed.py "$corpus" --batch-size 1 --folder "$ONNX" --max-length 384 | grep -E 'sentences|latency'
    echo "-- Mass int8 (linear layers quantised at load; 4x fewer weight bytes per call)"
    $MASS bench embed --model "$M" --corpus "$corpus" --batch-size 1 --precision int8 | grep -E 'sentences|latency|cosine'
    echo "== round $round: throughput (Mass ragged batches; ONNX Runtime batch 8)"
    $MASS bench embed --model "$M" --corpus "$corpus" | grep -E 'sentences|latency|gflops'
    "$PY" benchmarks/peer_embed.py "$corpus" --batch-size 8 --folder "$ONNX" --max-length 384 | grep -E 'sentences|latency'
done
