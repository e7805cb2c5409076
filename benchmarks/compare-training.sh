#!/usr/bin/env bash
# Training throughput, Mass against PyTorch, in one run (issue 16, point 4): MiniLM-L6 with a linear head on
# its mean-pooled states, batches of BATCH texts of exactly LENGTH tokens (the same ids: the corpus lines joined
# until the model's tokenizer gives that many), dropout 0.1, AdamW, THREADS threads each (PyTorch:
# torch.set_num_threads). ROUNDS alternating rounds of `mass bench train` and
# benchmarks/peers/train_finetune_torch.py (the peer kit's Python: torch 2.13 CPU, transformers); prints each
# round's examples/s and peak resident memory, the medians and the ratio Mass / PyTorch (above 1: Mass is faster).
#
# TASK=cnn compares the Fashion-MNIST ConvNet instead (`mass bench train-cnn` against
# benchmarks/peers/train_cnn_torch.py: batches of BATCH images, default 64; needs Debian's dataset-fashion-mnist).
#
#   make build models && bash ../shared/peers/setup.sh && benchmarks/compare-training.sh
#   TASK=cnn STEPS=100 benchmarks/compare-training.sh
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
PYTHON=${PYTHON:-$HOME/.cache/mass-peers/bin/python}
MODEL=${MODEL:-models/all-MiniLM-L6-v2/1}
CORPUS=${CORPUS:-../shared/peers/corpus.txt}
TASK=${TASK:-minilm}
BATCH=${BATCH:-$([ "$TASK" = cnn ] && echo 64 || echo 32)}
LENGTH=${LENGTH:-64}
STEPS=${STEPS:-15}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
args=(--batch-size "$BATCH" --steps "$STEPS" --warmup 3 --threads "$THREADS")
if [ "$TASK" = cnn ]; then
    run_mass() { "$MASS" bench train-cnn "${args[@]}" --json; }
    run_peer() { "$PYTHON" benchmarks/peers/train_cnn_torch.py "${args[@]}" 2>/dev/null; }
else
    run_mass() { "$MASS" bench train --model "$MODEL" --corpus "$CORPUS" "${args[@]}" --length "$LENGTH" --json; }
    run_peer() {
        "$PYTHON" benchmarks/peers/train_finetune_torch.py "$MODEL" "$CORPUS" "${args[@]}" --length "$LENGTH" 2>/dev/null
    }
fi
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
mass=()
torch=()
for round in $(seq "$ROUNDS"); do
    m=$(run_mass)
    t=$(run_peer)
    mass+=("$(echo "$m" | field examples_per_second)")
    torch+=("$(echo "$t" | field examples_per_second)")
    printf 'round %d: mass %6.1f examples/s (peak %4.0f MB)   pytorch %6.1f examples/s (peak %4.0f MB)\n' "$round" \
        "${mass[-1]}" "$(echo "$m" | field peak_rss_mb)" "${torch[-1]}" "$(echo "$t" | field peak_rss_mb)"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
m=$(median "${mass[@]}")
t=$(median "${torch[@]}")
echo "median: mass $m examples/s, pytorch $t examples/s; mass/pytorch $(echo "scale=3; $m / $t" | bc)"
