#!/usr/bin/env bash
# int8 MiniLM side by side, one run: Mass int8 (and fp32 for reference) against ONNX Runtime's dynamic int8
# (the peer kit's minilm_int8.onnx, per-channel weights), alternately, in process (tokenized first, warm-up,
# median of 3 passes; Mass also reports the cosine of every int8 embedding to its fp32 one), then whole
# processes with compare.sh. Needs `make build models` and the peer kit (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
M=models/all-MiniLM-L6-v2/1
MASS=.build/release/mass
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2; do
    echo "== round $round: batch 1 (latency)"
    $MASS bench embed --model $M --corpus $P/corpus.txt --batch-size 1 --precision int8 | grep -E 'sentences|latency'
    $PY benchmarks/peer_embed.py $P/corpus.txt --batch-size 1 --int8 | grep -E 'sentences|latency'
    echo "== round $round: throughput (Mass int8 and fp32, ragged batches; ONNX Runtime int8 batch 8 and 32)"
    $MASS bench embed --model $M --corpus $P/corpus.txt --precision int8 | grep -E 'sentences|cosine'
    $MASS bench embed --model $M --corpus $P/corpus.txt | grep -E 'sentences'
    $PY benchmarks/peer_embed.py $P/corpus.txt --batch-size 8 --int8 | grep -E 'sentences'
    $PY benchmarks/peer_embed.py $P/corpus.txt --batch-size 32 --int8 | grep -E 'sentences'
done
echo "== whole processes: mass embed --precision int8 vs embed_corpus.py --int8 (batch 8)"
bash $P/compare.sh "$MASS embed --model $M --precision int8 < $P/corpus.txt > /dev/null" \
    "$PY $P/embed_corpus.py $P/corpus.txt --int8" 5 | tail -3
