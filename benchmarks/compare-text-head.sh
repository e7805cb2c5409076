#!/usr/bin/env bash
# Issue 16 task (a): a classifier head on frozen MiniLM embeddings of the Rotten Tomatoes snippets, Mass
# (`mass train`, AdamW, early stopping on validation) against scikit-learn's logistic regression on
# sentence-transformers embeddings of the same texts, same split (the run's split.json), same test part, one run.
# CONFIG defaults to examples/train/rotten-tomatoes-head.json (4,866 snippets); pass
# examples/train/rotten-tomatoes-full-head.json for the 12,808. Needs `make build models datasets` and the peer
# kit (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
CONFIG=${1:-examples/train/rotten-tomatoes-head.json}
RUN=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['output'])" "$CONFIG")
echo "== Mass: mass train $CONFIG"
.build/release/mass train "$CONFIG" 2>/dev/null
echo "== peer: sentence-transformers + scikit-learn, the same split"
"$PY" benchmarks/peers/text_head_sklearn.py "$CONFIG" "$RUN" 2>/dev/null
