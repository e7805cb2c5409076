#!/usr/bin/env bash
# Multilingual speech, one run: whole `mass transcribe` processes against faster-whisper 1.2.1 (float32, 2
# threads, benchmarks/peers/transcribe_folder.py) on the same whisper-base folder (make models-extra), with the
# peer kit's compare.sh (alternating, RUNS runs each, default 3), every transcribe option at faster-whisper's
# default (beam 5, timestamps, temperature fallback, the language detected on the first 30 s): the 54 s English
# fixture clip; the six synthesized German, Spanish and Italian clips in one process; the same six translated into
# English. Needs `make build models-extra` and the peer kit (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
M=${MODELS_EXTRA:-models-extra}/whisper-base/1
C=${FIXTURES:-../shared/fixtures}/audio/clip5_long_us.wav
SPOKEN=$(ls Tests/MassModelsTests/Audio/*.wav | tr '\n' ' ')
RUNS=${RUNS:-3}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== English, 54 s (detection + beam 5)"
bash "$P/compare.sh" ".build/release/mass transcribe --model $M $C" \
    "$PY benchmarks/peers/transcribe_folder.py $M $C --compute-type float32" "$RUNS" | tail -3
echo "== six German, Spanish and Italian clips, one process"
bash "$P/compare.sh" ".build/release/mass transcribe --model $M $SPOKEN" \
    "$PY benchmarks/peers/transcribe_folder.py $M $SPOKEN --compute-type float32" "$RUNS" | tail -3
echo "== the same six, translated into English"
bash "$P/compare.sh" ".build/release/mass transcribe --model $M --task translate $SPOKEN" \
    "$PY benchmarks/peers/transcribe_folder.py $M $SPOKEN --compute-type float32 --task translate" "$RUNS" | tail -3
