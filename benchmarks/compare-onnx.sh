#!/usr/bin/env bash
# An ONNX export run by Mass's engine against ONNX Runtime running the same file, one run: paraphrase-MiniLM-L3-v2
# (make models-extra) embedding the peer corpus, whole processes with compare.sh (alternating, RUNS runs each,
# default 5): `mass embed` on the folder (Mass reads model.onnx's weights into its own BERT) against
# benchmarks/peers/embed_onnx_folder.py (ORT, batch 8, 2 threads). Needs `make build models-extra` and the peer kit.
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
M=${MODELS_EXTRA:-models-extra}/paraphrase-MiniLM-L3-v2-onnx/1
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
bash "$P/compare.sh" ".build/release/mass embed --model $M < $P/corpus.txt > /dev/null" \
    "$PY benchmarks/peers/embed_onnx_folder.py $M $P/corpus.txt" "${RUNS:-5}" | tail -3
