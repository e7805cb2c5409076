#!/usr/bin/env python3
"""Offline: record faster-whisper's transcripts for decoding options the shared fixtures do not cover (an initial
prompt; every window failing the log-probability threshold so that the temperature fallback runs to the end), with
the decoder prompt of every generate() call. Writes Tests/MassModelsTests/Goldens/whisper-options.json.

usage: ~/.cache/mass-peers/bin/python scripts/make-whisper-goldens.py   (the peer kit's virtualenv; never at test time)
"""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT.parent / "shared" / "peers"))
import peerlib  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402

AUDIO = ROOT.parent / "shared" / "fixtures" / "audio"
CASES = [
    ("initial_prompt", "clip1_us_short.wav", {"initial_prompt": "Speech recognition status report, Mass."}),
    ("log_prob_threshold_0", "clip5_long_us.wav", {"log_prob_threshold": 0.0}),
    ("word_timestamps_long", "clip5_long_us.wav", {"word_timestamps": True}),
    ("word_timestamps_short", "clip3_scotland_fast.wav", {"word_timestamps": True}),
]


def main():
    model = WhisperModel(str(peerlib.whisper_dir()), device="cpu", compute_type="float32", cpu_threads=2)
    calls = []

    class Recording:
        """Forwards to the CTranslate2 model, noting each generate() call's prompt and temperature."""

        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def generate(self, features, prompts, **kwargs):
            calls.append({"prompt": list(prompts[0]), "temperature": kwargs.get("sampling_temperature", 0.0)})
            return self.inner.generate(features, prompts, **kwargs)

    model.model = Recording(model.model)
    out = {"generator": "faster-whisper %s, compute_type float32, otherwise transcribe() defaults"
           % __import__("faster_whisper").__version__, "cases": []}
    for name, file, kwargs in CASES:
        calls.clear()
        segments, _ = model.transcribe(str(AUDIO / file), **kwargs)
        segments = list(segments)
        out["cases"].append({
            "name": name, "file": file, "options": kwargs,
            "text": "".join(s.text for s in segments).strip(),
            "segments": [{"start": s.start, "end": s.end, "text": s.text, "temperature": s.temperature,
                          "avg_logprob": s.avg_logprob,
                          "words": [{"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                                    for w in (s.words or [])]} for s in segments],
            "generate_calls": list(calls),
        })
    path = ROOT / "Tests" / "MassModelsTests" / "Goldens" / "whisper-options.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
