#!/usr/bin/env python3
"""Offline: goldens for multilingual Whisper (whisper-base, laid out by `scripts/fetch-models.sh models-extra
extra`). Synthesizes German, Spanish and Italian sentences with Debian's espeak-ng (once, into
Tests/MassModelsTests/Audio/*.wav: resampled to 16 kHz 16-bit mono by faster_whisper.decode_audio, so both
implementations read the very same samples), then records faster-whisper's answers with transcribe() defaults
(beam 5, timestamps, temperature fallback, compute_type float32) on those and on the shared English clips:
detected language and its probability (the five most probable), text and segments; for the other languages also
task="translate", and an explicit language. Clips that needed a temperature above 0 are reported and left out
(a fallback samples, and two implementations' random draws differ).

usage: ~/.cache/mass-peers/bin/python scripts/make-whisper-base-goldens.py models-extra/whisper-base/1
       (needs `apt-get install espeak-ng` for the first run; writes Tests/MassModelsTests/Goldens/whisper-base.json)
"""
import json
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np
import faster_whisper
from faster_whisper import WhisperModel, decode_audio

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "fixtures" / "audio"
AUDIO = ROOT / "Tests" / "MassModelsTests" / "Audio"
# Three more (de: "Heute ist das Wetter in Berlin sonnig und warm. Morgen soll es regnen.", "Der Zug nach München
# fährt um acht Uhr vom Hauptbahnhof ab."; es: "Mañana viajamos a Barcelona para visitar a nuestros amigos.") were
# dropped: whisper-base fell back to sampling on every run of them.
SPOKEN = [
    ("de-kitchen", "de", "Ich koche am Abend gern Nudeln mit Tomatensoße für meine Familie."),
    ("es-market", "es", "El mercado abre todos los días a las nueve de la mañana."),
    ("es-library", "es", "La biblioteca de la ciudad tiene más de diez mil libros."),
    ("it-coffee", "it", "Ogni mattina bevo un caffè al bar vicino alla stazione."),
    ("it-museum", "it", "Il museo è chiuso il lunedì, ma è aperto tutti gli altri giorni."),
    ("it-sea", "it", "D'estate andiamo al mare con i bambini e mangiamo il gelato."),
]
ENGLISH = ["clip1_us_short.wav", "clip2_gb_female.wav", "clip3_scotland_fast.wav", "jfk.flac"]


def synthesize(name, voice, text):
    path = AUDIO / f"{name}.wav"
    if path.exists():
        return path
    with tempfile.NamedTemporaryFile(suffix=".wav") as raw:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", raw.name, text], check=True)
        samples = decode_audio(raw.name, sampling_rate=16000)
    pcm = np.round(samples * 32768).clip(-32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return path


def record(model, path, **kwargs):
    segments, info = model.transcribe(str(path), **kwargs)
    segments = list(segments)
    return {
        "options": kwargs,
        "language": info.language,
        "language_probability": info.language_probability,
        "top_languages": [[l, p] for l, p in (info.all_language_probs or [])[:5]],
        "text": "".join(s.text for s in segments).strip(),
        "segments": [{"start": s.start, "end": s.end, "text": s.text, "temperature": s.temperature}
                     for s in segments],
    }


def main():
    folder = sys.argv[1]
    AUDIO.mkdir(parents=True, exist_ok=True)
    model = WhisperModel(folder, device="cpu", compute_type="float32", cpu_threads=2)
    cases, skipped = [], []
    clips = [(f"en-{Path(f).stem}", "en", SHARED / f, f"../shared/fixtures/audio/{f}") for f in ENGLISH]
    for name, language, text in SPOKEN:
        path = synthesize(name, language, text)
        clips.append((name, language, path, f"Tests/MassModelsTests/Audio/{path.name}"))
    for name, language, path, relative in clips:
        runs = [("detect", record(model, path))]
        if language != "en":
            runs.append(("given", record(model, path, language=language)))
            runs.append(("translate", record(model, path, task="translate")))
        hot = [kind for kind, r in runs if any(s["temperature"] > 0 for s in r["segments"])]
        if hot:
            skipped.append({"clip": name, "runs": hot})
            runs = [(kind, r) for kind, r in runs if kind not in hot]
        for kind, r in runs:
            cases.append({"name": f"{name}/{kind}", "file": relative, "spoken": language, **r})
    out = {"generator": f"faster-whisper {faster_whisper.__version__}, compute_type float32, transcribe() defaults",
           "cases": cases, "skipped_for_fallback": skipped}
    (ROOT / "Tests" / "MassModelsTests" / "Goldens" / "whisper-base.json").write_text(
        json.dumps(out, indent=1, ensure_ascii=False) + "\n")
    print(f"{len(cases)} cases, skipped {skipped}")


if __name__ == "__main__":
    main()
