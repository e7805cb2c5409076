#!/usr/bin/env bash
# A distilled student against its teacher (issue 16, point 3d): embedding throughput on the peer corpus, ROUNDS
# alternating rounds of `mass bench embed` (ragged batches, THREADS threads) on each folder; prints each round's
# sentences/s (one timed pass over the corpus each), the medians and the ratio student / teacher.
#
#   make build models datasets && mass train examples/train/minilm-distill.json
#   benchmarks/compare-distilled.sh [TEACHER] [STUDENT]
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
TEACHER=${1:-models/all-MiniLM-L6-v2/1}
STUDENT=${2:-runs/minilm-distill/model}
CORPUS=${CORPUS:-../shared/peers/corpus.txt}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
bench() {
    "$MASS" bench embed --model "$1" --corpus "$CORPUS" --threads "$THREADS" --runs 1 --json |
        sed -n 's/.*"sentences_per_s":"\([0-9.]*\)".*/\1/p'
}
teacher=()
student=()
for round in $(seq "$ROUNDS"); do
    teacher+=("$(bench "$TEACHER")")
    student+=("$(bench "$STUDENT")")
    printf 'round %d: teacher %7.1f sentences/s   student %7.1f sentences/s\n' "$round" "${teacher[-1]}" "${student[-1]}"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
t=$(median "${teacher[@]}")
s=$(median "${student[@]}")
echo "median: teacher $t sentences/s, student $s sentences/s; student/teacher $(echo "scale=3; $s / $t" | bc)"
