"""Peer for measurement only: faster-whisper 1.2.1 transcribing with a CTranslate2 model folder given on the
command line (the shared peer kit's transcribe.py always loads tiny.en fp16). Used by
benchmarks/compare-transcribe-int8.sh to run faster-whisper on the int8 model.bin `mass compress` writes, and by
benchmarks/compare-transcribe-base.sh on multilingual whisper-base (language detection, translation).

usage: $PY transcribe_folder.py MODEL_DIR FILE... [--beam-size 5] [--compute-type default|int8|float32]
       [--task transcribe|translate] [--language CODE]

WhisperModel(MODEL_DIR, device='cpu', compute_type=..., cpu_threads=2, num_workers=1); every transcribe option
at faster-whisper's default but the beam size; prints one transcript per file.
"""
import argparse

from faster_whisper import WhisperModel


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("files", nargs="+")
    ap.add_argument("--beam-size", type=int, default=5)
    ap.add_argument("--compute-type", default="default")
    ap.add_argument("--task", default="transcribe")
    ap.add_argument("--language")
    a = ap.parse_args()
    model = WhisperModel(a.model, device="cpu", compute_type=a.compute_type, cpu_threads=2, num_workers=1)
    for f in a.files:
        segments, _ = model.transcribe(f, beam_size=a.beam_size, task=a.task, language=a.language)
        print("".join(s.text for s in segments).strip())


if __name__ == "__main__":
    main()
