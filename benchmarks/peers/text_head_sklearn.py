#!/usr/bin/env python3
"""Peer for `mass train` (text-classification-head), measurement only: scikit-learn's logistic regression on
sentence-transformers embeddings of the same texts, trained on the same train part of the same split (read from
the run's split.json) and scored on the same test part.

usage: ~/.cache/mass-peers/bin/python benchmarks/peers/text_head_sklearn.py CONFIG.json RUN_DIR
"""
import csv
import json
import sys
import time

from sentence_transformers import SentenceTransformer
from sklearn.linear_model import LogisticRegression


def main():
    config = json.load(open(sys.argv[1]))
    split = json.load(open(sys.argv[2] + "/split.json"))
    d = config["dataset"]
    labels = d["labels"]
    rows = []
    with open(d["path"], newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row[d.get("label", "label")] in labels:
                rows.append((row[d.get("text", "text")], labels.index(row[d.get("label", "label")])))
    texts = [t for t, _ in rows]
    y = [l for _, l in rows]
    started = time.time()
    model = SentenceTransformer(config["encoder"], device="cpu")
    x = model.encode(texts, batch_size=64)
    embedding = time.time() - started
    started = time.time()
    classifier = LogisticRegression(max_iter=1000)
    classifier.fit(x[split["train"]], [y[i] for i in split["train"]])
    training = time.time() - started
    accuracy = classifier.score(x[split["test"]], [y[i] for i in split["test"]])
    print(json.dumps({"peer": "sentence-transformers + scikit-learn LogisticRegression(C=1)", "examples": len(rows),
                      "test_accuracy": accuracy, "test_examples": len(split["test"]),
                      "seconds": {"embedding": round(embedding, 2), "training": round(training, 2)}}))


if __name__ == "__main__":
    main()
