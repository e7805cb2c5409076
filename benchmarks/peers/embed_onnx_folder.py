"""Peer for measurement only: ONNX Runtime running an ONNX sentence-embedding export as shipped (the graph does
the mean pooling), the peer kit's embed_corpus.py protocol otherwise: items sorted longest first, batches of
--batch-size tokenized by the folder's tokenizer.json (`tokenizers`), truncated to --max-length, padded to the
longest in the batch, 2 intra-op threads. Prints how many were embedded. Used by benchmarks/compare-onnx.sh.

usage: $PY embed_onnx_folder.py FOLDER FILE [--batch-size 8] [--max-length 128] [--output 461]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "shared" / "peers"))
import numpy as np  # noqa: E402
import peerlib  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("file")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--output", default="461")
    a = ap.parse_args()
    lines = [line.rstrip("\r\n") for line in open(a.file, encoding="utf-8")]
    tokenizer = Tokenizer.from_file(f"{a.folder}/tokenizer.json")
    tokenizer.enable_truncation(a.max_length)
    tokenizer.enable_padding()
    session = peerlib.ort_session(Path(a.folder) / "model.onnx", 2)
    order = sorted(range(len(lines)), key=lambda i: -len(lines[i]))
    out = [None] * len(lines)
    for start in range(0, len(order), a.batch_size):
        batch = order[start:start + a.batch_size]
        encodings = tokenizer.encode_batch([lines[i] for i in batch])
        feeds = {"input_ids": np.array([e.ids for e in encodings], np.int64),
                 "attention_mask": np.array([e.attention_mask for e in encodings], np.int64)}
        for i, row in zip(batch, session.run([a.output], feeds)[0]):
            out[i] = row
    print(len([x for x in out if x is not None]), "embedded")


if __name__ == "__main__":
    main()
