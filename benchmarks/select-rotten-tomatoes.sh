#!/usr/bin/env bash
# Model selection over the real Rotten Tomatoes candidates, end to end through Mass:
#   base        MiniLM-L6 (frozen) + a logistic head          examples/train/rotten-tomatoes-head.json
#   fine-tuned  MiniLM-L6 fine-tuned with its head             examples/train/rotten-tomatoes-finetune.json
#   distilled   the 3-layer student (issue 16) + a frozen head  the head example on $STUDENT
#   int8        the fine-tuned model, linear layers in int8     mass compress --int8
#   calibrated  the distilled model calibrated to the fine-tuned one served as a service: a second mass serve
#               hosts the fine-tuned model behind TEI's /predict, the front server wraps it as a service-type
#               model, 2,000 reviews outside the dataset are recorded as pairs, mass services calibrate fits
#               temperature / vector scaling and registers the result
# All five are registered as versions of `rt` (base is production), then `mass select` judges them on the
# 973 test snippets that no candidate trained on and canaries the winner (examples/select/rotten-tomatoes.json).
#
#   STUDENT=runs/minilm-distill/model benchmarks/select-rotten-tomatoes.sh
#
# STUDENT: the distilled encoder (`mass train examples/train/minilm-distill.json`). Trained runs already in
# RUNS are reused. Python (stdlib csv) only prepares the calibration texts.
set -euo pipefail
cd "$(dirname "$0")/.."
MASS=${MASS:-.build/release/mass}
RUNS=${RUNS:-runs}
STUDENT=${STUDENT:-runs/minilm-distill/model}
PROVIDER=${PROVIDER:-18211}
PORT=${PORT:-18212}
SELECT=${SELECT:-examples/select/rotten-tomatoes.json}
home=${WORK:-$(mktemp -d)}
trap 'kill ${provider:-} ${front:-} 2>/dev/null || true' EXIT
mkdir -p "$RUNS"

# train EXAMPLE OUTPUT [ENCODER]: runs a training example into OUTPUT unless it is there.
train() {
    [ -f "$2/model/head.safetensors" ] && return
    jq --arg out "$2" --arg enc "${3:-}" '.output = $out | if $enc != "" then .encoder = $enc else . end' "$1" \
        >"$home/$(basename "$2").json"
    "$MASS" train "$home/$(basename "$2").json" --threads "$(nproc)"
}
train examples/train/rotten-tomatoes-head.json "$RUNS/rotten-tomatoes-head"
train examples/train/rotten-tomatoes-finetune.json "$RUNS/rotten-tomatoes-finetune"
train examples/train/rotten-tomatoes-head.json "$RUNS/rotten-tomatoes-head-distilled" "$STUDENT"
[ -f "$RUNS/rotten-tomatoes-finetune-int8/head.safetensors" ] ||
    "$MASS" compress --model "$RUNS/rotten-tomatoes-finetune/model" --int8 --out "$RUNS/rotten-tomatoes-finetune-int8" \
        >"$home/compress-report.json"

reg=(--repository "$home/repository" --registry "$home/registry.sqlite" --store "$home/store")
mkdir -p "$home/repository"
"$MASS" models register "$RUNS/rotten-tomatoes-head/model" --name rt --alias production "${reg[@]}" >/dev/null
"$MASS" models register "$RUNS/rotten-tomatoes-finetune/model" --name rt "${reg[@]}" >/dev/null
"$MASS" models register "$RUNS/rotten-tomatoes-head-distilled/model" --name rt "${reg[@]}" >/dev/null
"$MASS" models register "$RUNS/rotten-tomatoes-finetune-int8" --name rt "${reg[@]}" >/dev/null

# The calibrated candidate. The provider: the fine-tuned model alone in a repository of its own.
mkdir -p "$home/provider/rt-finetuned" "$home/repository/rt-api" "$home/repository/distilled"
ln -sfn "$(realpath "$RUNS/rotten-tomatoes-finetune/model")" "$home/provider/rt-finetuned/1"
ln -sfn "$(realpath "$RUNS/rotten-tomatoes-head-distilled/model")" "$home/repository/distilled/1"
echo '{"task": "text-classification"}' | tee "$home/provider/rt-finetuned/mass.json" >"$home/repository/distilled/mass.json"
cat >"$home/repository/rt-api/mass.json" <<JSON
{"task": "text-classification",
 "remote": {"api": "tei-predict", "url": "http://127.0.0.1:$PROVIDER", "call_timeout_ms": 60000}}
JSON
python3 - "$home/calibration.txt" <<'PY'
import csv, sys
held = {r["text"] for r in csv.DictReader(open("datasets/rotten-tomatoes.csv"))}
texts = [r["text"].replace("\n", " ") for r in csv.DictReader(open("datasets/rotten-tomatoes-full.csv"))
         if r["category"] in ("fresh", "rotten") and r["text"] not in held and r["text"].strip()]
open(sys.argv[1], "w").write("\n".join(texts[:2000]) + "\n")
PY
"$MASS" serve --repository "$home/provider" --port "$PROVIDER" --registry "$home/provider.sqlite" \
    --store "$home/provider-store" 2>"$home/provider.log" &
provider=$!
"$MASS" serve --port "$PORT" "${reg[@]}" 2>"$home/front.log" &
front=$!
ready() {
    for _ in $(seq 600); do
        curl -sf "$1" >/dev/null && return
        kill -0 "$2" 2>/dev/null || { echo "a server stopped; see $home/*.log" >&2; exit 1; }
        sleep 0.2
    done
    echo "$1 never became ready" >&2
    exit 1
}
ready "http://127.0.0.1:$PROVIDER/v2/models/rt-finetuned/ready" "$provider"
ready "http://127.0.0.1:$PORT/v2/models/rt-api/ready" "$front"
"$MASS" services record rt-api --candidate distilled --inputs "$home/calibration.txt" --url "http://127.0.0.1:$PORT"
"$MASS" services calibrate rt-api --candidate distilled --register rt "${reg[@]}"
kill "$provider" "$front"
wait "$provider" "$front" 2>/dev/null || true

jq --arg out "$home/selection" '.output = $out' "$SELECT" >"$home/select.json"
"$MASS" select "$home/select.json" "${reg[@]}"
"$MASS" deploy show rt "${reg[@]}"
echo "report, plots and registry in $home"
