#!/usr/bin/env bash
# Issue 18, point 1: Mass's TPE with the examples' pruner (Hyperband) against Optuna 5's TPE + Hyperband on the same objective,
# search space and trial budget, one run, per seed: the best value each finds and its wall time.
#
# TASK=head (default): examples/tune/rotten-tomatoes-head.json, a head on frozen MiniLM embeddings of the Rotten
# Tomatoes snippets (the peer trains the same head in PyTorch on Mass's own embeddings and split:
# benchmarks/peers/tune_head_optuna.py). TASK=cnn: examples/tune/fashion-mnist-cnn.json, the ConvNet from scratch
# on a Fashion-MNIST subset (benchmarks/peers/tune_cnn_optuna.py, the same network in PyTorch).
# Mass runs its study's "parallel" trials at once on THREADS threads in all; the peer runs trials one after another
# with torch on THREADS threads. A warm-up study of one trial first fills Mass's vectors cache (the peer reuses
# those embeddings) and gives the split.
# MATCH=trials (default): both studies get the configuration's trial budget. MATCH=time: the peer runs first with
# that budget, then Mass gets the peer's measured wall time as its budget ("seconds"; no trial starts after it, the
# running ones finish) and as many trials as fit.
#
#   make build models datasets && bash ../shared/peers/setup.sh && ~/.cache/mass-peers/bin/pip install optuna==5.1.0
#   benchmarks/compare-tuning.sh                  # SEEDS="1 2 3" TASK=head
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-$PWD/.build/release/mass}
PYTHON=${PYTHON:-$HOME/.cache/mass-peers/bin/python}
TASK=${TASK:-head}
SEEDS=${SEEDS:-1 2 3}
THREADS=${THREADS:-2}
MATCH=${MATCH:-trials}
if [ "$TASK" = cnn ]; then
    CONFIG=examples/tune/fashion-mnist-cnn.json
    PEER=benchmarks/peers/tune_cnn_optuna.py
else
    CONFIG=examples/tune/rotten-tomatoes-head.json
    PEER=benchmarks/peers/tune_head_optuna.py
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
registry=(--registry "$WORK/registry.sqlite" --store "$WORK/store" --work "$WORK/jobs")
study() { # NAME SEED TRIALS [SECONDS]: the configuration with its name, sampler seed and budget
    python3 -c "
import json, sys
c = json.load(open('$CONFIG'))
c['name'], c['sampler']['seed'] = sys.argv[1], int(sys.argv[2])
if sys.argv[3] != '-': c['budget']['trials'] = int(sys.argv[3])
if len(sys.argv) > 4: c['budget']['seconds'] = float(sys.argv[4])
json.dump(c, open('$WORK/' + sys.argv[1] + '.json', 'w'))" "$@"
    echo "$WORK/$1.json"
}
"$MASS" tune "$(study warmup 0 1)" "${registry[@]}" --threads "$THREADS" > /dev/null 2>&1
split=$(ls "$WORK"/jobs/study-warmup/trial-0/run/split.json)
printf '%-6s %-28s %-28s\n' seed "mass (best, seconds)" "optuna (best, seconds)"
run_peer() { # CONFIG SEED
    if [ "$TASK" = cnn ]; then
        "$PYTHON" "$PEER" "$1" "$split" "$2" "$THREADS" 2>/dev/null
    else
        "$PYTHON" "$PEER" "$1" "$WORK/jobs/vectors-cache/embeddings.safetensors" "$split" "$2" 2>/dev/null
    fi
}
for seed in $SEEDS; do
    peer_config=$(study "peer-$seed" "$seed" -)
    if [ "$MATCH" = time ]; then
        peer=$(run_peer "$peer_config" "$seed")
        peer_seconds=$(echo "$peer" | python3 -c "import json,sys; print(json.load(sys.stdin)['seconds'])")
        config=$(study "mass-$seed" "$seed" 100000 "$peer_seconds")
    else
        config=$(study "mass-$seed" "$seed" -)
    fi
    started=$(date +%s.%N)
    mass=$("$MASS" tune "$config" "${registry[@]}" --threads "$THREADS" 2> "$WORK/mass-$seed.log")
    mass_seconds=$(echo "$(date +%s.%N) - $started" | bc)
    mass_best=$(echo "$mass" | python3 -c "import json,sys; print(json.load(sys.stdin)['best'][0]['values'][0])")
    mass_counts=$(echo "$mass" | python3 -c "import json,sys; print(json.load(sys.stdin)['counts'])")
    [ "$MATCH" = time ] || peer=$(run_peer "$peer_config" "$seed")
    peer_best=$(echo "$peer" | python3 -c "import json,sys; print(json.load(sys.stdin)['best'])")
    peer_seconds=$(echo "$peer" | python3 -c "import json,sys; print(json.load(sys.stdin)['seconds'])")
    peer_counts=$(echo "$peer" | python3 -c "import json,sys; print(json.load(sys.stdin)['counts'])")
    printf '%-6s %.4f %7.1f s  %-24s %.4f %7.1f s  %s\n' "$seed" "$mass_best" "$mass_seconds" "$mass_counts" \
        "$peer_best" "$peer_seconds" "$peer_counts"
    echo "$seed $mass_best $mass_seconds $peer_best $peer_seconds" >> "$WORK/rows"
done
awk '{mb+=$2; ms+=$3; pb+=$4; ps+=$5; n++} END {printf "mean: mass %.4f in %.1f s, optuna %.4f in %.1f s; mass/optuna wall time %.2f\n", mb/n, ms/n, pb/n, ps/n, ms/ps}' "$WORK/rows"
echo "peer: $(echo "$peer" | python3 -c "import json,sys; print(json.load(sys.stdin)['peer'])")"
