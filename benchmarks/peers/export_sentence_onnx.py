"""Peer set-up for measurement only: exports a sentence-transformers folder (e.g. all-mpnet-base-v2) to ONNX for
ONNX Runtime — the transformer, mean pooling over the attention mask and L2 normalisation in one graph with
output `sentence_embedding` and dynamic batch and length — into OUT with the folder's tokenizer.json beside it, the
layout benchmarks/peers/embed_onnx_folder.py reads. Checks the export against sentence-transformers on a few texts.

usage: $PY export_sentence_onnx.py FOLDER OUT
"""
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from sentence_transformers import SentenceTransformer


class Embedder(torch.nn.Module):
    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, input_ids, attention_mask):
        states = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)


def main():
    folder, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    model = SentenceTransformer(str(folder), device="cpu")
    embedder = Embedder(model[0].auto_model).eval()
    texts = ["A man is eating food.", "Relative positions matter " * 20]
    features = model.tokenize(texts)
    args = (features["input_ids"], features["attention_mask"])
    torch.onnx.export(
        embedder, args, str(out / "model.onnx"), input_names=["input_ids", "attention_mask"],
        output_names=["sentence_embedding"], opset_version=17, dynamo=False,
        dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"}})
    shutil.copy(folder / "tokenizer.json", out / "tokenizer.json")
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {k: v.numpy() for k, v in zip(["input_ids", "attention_mask"], args)})[0]
    ours = model.encode(texts)
    print("export max |diff| to sentence-transformers:", float(np.abs(theirs - ours).max()))


if __name__ == "__main__":
    main()
