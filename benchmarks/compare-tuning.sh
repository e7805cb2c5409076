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
# that budget, then Mass gets the peer's measured wall time as its budget ("seconds": a trial starts only when it is
# expected to end within it, with time kept for the confirmation's re-runs) and as many trials as fit.
# PEER_OBJECTIVE=mass: the peer's Optuna drives `mass train` itself (benchmarks/peers/tune_optuna_on_mass.py, one
# trial at a time on THREADS threads, reports and verdicts over the run's pipes), so both studies optimise the very
# same function and differ only in the tuner. Default (torch): the peer trains in PyTorch as above.
# Judging (JUDGE_SEEDS, default "1 2 3 4 5"; empty: none): a study's best value is one seeded run's best
# validation accuracy, so it is partly the luck of that run. Each study's best configuration is then trained again
# once per judging seed (other initialisations and orders, the same split) by both trainers, `mass train` and the
# peer's PyTorch loop, and scored on the test part neither study saw (the head: the split's test snippets; the
# ConvNet: the 10,000 t10k images), at each run's best epoch: what the configuration is worth, not its luckiest run.
# Mass's study confirms its best configurations as the configuration says ("confirm": re-runs with other training
# seeds, within its wall time; the seeds are not the judging seeds); CONFIRM=0 leaves that out.
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
JUDGE_SEEDS=${JUDGE_SEEDS-1 2 3 4 5}
PEER_OBJECTIVE=${PEER_OBJECTIVE:-torch}
PARALLEL=${PARALLEL:-} # Mass's trials at once (default: the configuration's), THREADS shared among them
CONFIRM=${CONFIRM:-}   # 0: Mass's study without the configuration's confirmation re-runs
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
if '$PARALLEL': c['parallel'] = int('$PARALLEL')
if '$CONFIRM' == '0': c.pop('confirm', None)
json.dump(c, open('$WORK/' + sys.argv[1] + '.json', 'w'))" "$@"
    echo "$WORK/$1.json"
}
"$MASS" tune "$(study warmup 0 1)" "${registry[@]}" --threads "$THREADS" > /dev/null 2>&1
split=$(ls "$WORK"/jobs/study-warmup/trial-0/run/split.json)
printf '%-6s %-28s %-28s %s\n' seed "mass (best, seconds)" "optuna (best, seconds)" \
    "${JUDGE_SEEDS:+judged test accuracy: mass's pick, optuna's (by mass train; by torch)}"
run_peer() { # CONFIG SEED [--judge PARAMS SEEDS]
    if [ "$PEER_OBJECTIVE" = mass ] && [ $# -eq 2 ]; then
        "$PYTHON" benchmarks/peers/tune_optuna_on_mass.py "$1" "$2" "$THREADS" "$MASS" "$WORK/jobs/vectors-cache" \
            "$WORK/optuna-$2" 2>/dev/null
    elif [ "$TASK" = cnn ]; then
        "$PYTHON" "$PEER" "$1" "$split" "$2" "$THREADS" "${@:3}" 2>/dev/null
    else
        "$PYTHON" "$PEER" "$1" "$WORK/jobs/vectors-cache/embeddings.safetensors" "$split" "$2" "${@:3}" 2>/dev/null
    fi
}
judge_mass() { # PARAMS.json: the mean test accuracy of `mass train` on the configuration over JUDGE_SEEDS
    local total=0 n=0 seed cfg
    for seed in $JUDGE_SEEDS; do
        cfg="$WORK/judge-$seed.json"
        python3 -c "
import json, sys
c = json.load(open('$CONFIG'))['base']
for name, value in json.load(open(sys.argv[1])).items():
    section, key = name.split('.', 1)
    c.setdefault(section, {})[key] = value
section = 'images' if c['task'] == 'image-classification-cnn' else 'head'
c.setdefault(section, {})['seed'] = int(sys.argv[2])
c['output'] = sys.argv[3]
json.dump(c, open(sys.argv[4], 'w'))" "$1" "$seed" "$WORK/judged" "$cfg"
        rm -rf "$WORK/judged"
        accuracy=$("$MASS" train "$cfg" --threads "$THREADS" --vectors-cache "$WORK/jobs/vectors-cache" 2> /dev/null |
            python3 -c "import json,sys; print(json.load(sys.stdin)['test_accuracy'])")
        total=$(echo "$total + $accuracy" | bc -l)
        n=$((n + 1))
    done
    echo "$total / $n" | bc -l
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
    judged=""
    if [ -n "$JUDGE_SEEDS" ]; then
        echo "$mass" | python3 -c "import json,sys; json.dump(json.load(sys.stdin)['best'][0]['params'], sys.stdout)" \
            > "$WORK/mass-params.json"
        echo "$peer" | python3 -c "import json,sys; json.dump(json.load(sys.stdin)['params'], sys.stdout)" \
            > "$WORK/peer-params.json"
        seeds=$(echo $JUDGE_SEEDS | tr ' ' ,)
        mass_by_mass=$(judge_mass "$WORK/mass-params.json")
        peer_by_mass=$(judge_mass "$WORK/peer-params.json")
        mass_by_torch=$(run_peer "$peer_config" "$seed" --judge "$WORK/mass-params.json" "$seeds" |
            python3 -c "import json,sys; print(json.load(sys.stdin)['mean_test'])")
        peer_by_torch=$(run_peer "$peer_config" "$seed" --judge "$WORK/peer-params.json" "$seeds" |
            python3 -c "import json,sys; print(json.load(sys.stdin)['mean_test'])")
        judged=$(printf '%.4f %.4f; %.4f %.4f' "$mass_by_mass" "$peer_by_mass" "$mass_by_torch" "$peer_by_torch")
        echo "$seed $mass_by_mass $peer_by_mass $mass_by_torch $peer_by_torch" >> "$WORK/judged-rows"
    fi
    printf '%-6s %.4f %7.1f s  %-24s %.4f %7.1f s  %-24s %s\n' "$seed" "$mass_best" "$mass_seconds" "$mass_counts" \
        "$peer_best" "$peer_seconds" "$peer_counts" "$judged"
    echo "$seed $mass_best $mass_seconds $peer_best $peer_seconds" >> "$WORK/rows"
done
awk '{mb+=$2; ms+=$3; pb+=$4; ps+=$5; n++} END {printf "mean: mass %.4f in %.1f s, optuna %.4f in %.1f s; mass/optuna wall time %.2f\n", mb/n, ms/n, pb/n, ps/n, ms/ps}' "$WORK/rows"
if [ -s "$WORK/judged-rows" ]; then
    awk '{mm+=$2; pm+=$3; mt+=$4; pt+=$5; n++; if ($2+$4 > $3+$5) a++; else if ($2+$4 < $3+$5) b++; else t++}
        END {printf "judged test accuracy (mean over seeds): mass pick %.4f, optuna pick %.4f by mass train; mass pick %.4f, optuna pick %.4f by torch; mass pick ahead on %d, behind on %d, tied on %d (both judges summed)\n", mm/n, pm/n, mt/n, pt/n, a, b, t}' \
        "$WORK/judged-rows"
fi
echo "peer: $(echo "$peer" | python3 -c "import json,sys; print(json.load(sys.stdin)['peer'])")"
