#!/usr/bin/env bash
# Speech in int8, one run: whole `mass transcribe --precision int8` processes against faster-whisper 1.2.1 with
# compute_type="int8" (2 threads, the peer kit's transcribe.py) with compare.sh (alternating, RUNS runs each,
# default 3) on the 54 s fixture clip, with faster-whisper's defaults (beam 5) and greedy (beam 1); then Mass fp32
# against Mass int8; then both loading the CTranslate2 int8 model.bin `mass compress --int8` writes (faster-whisper
# through benchmarks/peers/transcribe_folder.py). Needs `make build models` and the peer kit
# (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
C=${FIXTURES:-../shared/fixtures}/audio/clip5_long_us.wav
RUNS=${RUNS:-3}
MASS=".build/release/mass transcribe --precision int8"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== defaults (beam 5, timestamps, temperature fallback)"
bash "$P/compare.sh" "$MASS $C" "$PY $P/transcribe.py --compute-type int8 $C" "$RUNS" | tail -3
echo "== greedy (beam 1)"
bash "$P/compare.sh" "$MASS --beam-size 1 $C" "$PY $P/transcribe.py --compute-type int8 --beam-size 1 $C" "$RUNS" |
    tail -3
echo "== Mass int8 (first) against Mass fp32 (second), defaults: the ratio is int8's speed-up"
bash "$P/compare.sh" "$MASS $C" ".build/release/mass transcribe $C" "$RUNS" | tail -3
INT8=$(mktemp -d)/whisper-tiny.en-int8
trap 'rm -rf "$(dirname "$INT8")"' EXIT
.build/release/mass compress --model models/whisper-tiny.en/1 --int8 --out "$INT8" >/dev/null
echo "== the int8 model.bin written by mass compress, loaded by both (defaults; the file's int8 as stored)"
bash "$P/compare.sh" ".build/release/mass transcribe --model $INT8 $C" \
    "$PY benchmarks/peers/transcribe_folder.py $INT8 $C" "$RUNS" | tail -3
echo "== transcripts: faster-whisper int8, then Mass int8 (defaults)"
$PY "$P/transcribe.py" --compute-type int8 "$C"
$MASS "$C"
