#!/usr/bin/env bash
# Side-by-side embedding benchmark, one run: Mass and ONNX Runtime fp32 (2 threads) alternately, in process
# (same protocol: tokenized first, warm-up, median of 3 passes), then whole processes with the peer kit's
# compare.sh. Needs `make build models` and the peer kit (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
M=models/all-MiniLM-L6-v2/1
MASS=.build/release/mass
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in 1 2 3; do
    echo "== round $round: batch 1 (latency)"
    $MASS bench embed --model $M --corpus $P/corpus.txt --batch-size 1 | grep -E 'sentences|latency|gflops'
    $PY benchmarks/peer_embed.py $P/corpus.txt --batch-size 1 | grep -E 'sentences|latency'
    echo "== round $round: throughput (Mass ragged batches; ONNX Runtime batch 8 and 32; its batch 1 above is its best here)"
    $MASS bench embed --model $M --corpus $P/corpus.txt | grep -E 'sentences|latency|gflops'
    $PY benchmarks/peer_embed.py $P/corpus.txt --batch-size 8 | grep -E 'sentences|latency'
    $PY benchmarks/peer_embed.py $P/corpus.txt --batch-size 32 | grep -E 'sentences|latency'
done
echo "== whole processes: mass embed vs embed_corpus.py (batch 8)"
bash $P/compare.sh "$MASS embed --model $M < $P/corpus.txt > /dev/null" "$PY $P/embed_corpus.py $P/corpus.txt" 5 | tail -3
