#!/usr/bin/env bash
# Speech benchmark, one run: whole `mass transcribe` processes against faster-whisper 1.2.1 (fp32, 2 threads, the
# peer kit's transcribe.py) with the peer kit's compare.sh (alternating, RUNS runs each, default 3), on the 54 s
# fixture clip: faster-whisper's defaults, greedy (beam 1, both with timestamps and fallback), and eight copies of
# the clip (Mass transcribes them together; faster-whisper one after another). Then `mass bench transcribe`:
# the same eight clips submitted at once to the serving runtime. Needs `make build models` and the peer kit
# (`bash ../shared/peers/setup.sh`).
set -euo pipefail
cd "$(dirname "$0")/.."
P=${PEERS:-../shared/peers}
PY=${MASS_PEERS_VENV:-$HOME/.cache/mass-peers}/bin/python
C=${FIXTURES:-../shared/fixtures}/audio/clip5_long_us.wav
RUNS=${RUNS:-3}
EIGHT="$C $C $C $C $C $C $C $C"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== defaults (beam 5, timestamps, temperature fallback)"
bash "$P/compare.sh" ".build/release/mass transcribe $C" "$PY $P/transcribe.py $C" "$RUNS" | tail -3
echo "== greedy (beam 1, timestamps, temperature fallback)"
bash "$P/compare.sh" ".build/release/mass transcribe --beam-size 1 $C" "$PY $P/transcribe.py --beam-size 1 $C" "$RUNS" |
    tail -3
echo "== eight clips (defaults): Mass together, faster-whisper one after another"
bash "$P/compare.sh" ".build/release/mass transcribe $EIGHT" "$PY $P/transcribe.py $EIGHT" "$RUNS" | tail -3
echo "== the serving runtime, eight clips submitted at once"
.build/release/mass bench transcribe --runs "$RUNS" --concurrency 8 "$C"
