#!/usr/bin/env python3
"""Peer for `mass tune` on an image-classification-cnn study, measurement only: Optuna 5's TPE sampler and
Hyperband pruner over the same search space, budget and objective (best validation accuracy over the epochs), the
ConvNet trained in PyTorch as Mass's ImageTraining trains it (two 3x3 convolutions of 32 and 64 channels with
ReLU and 2x2 max pooling, 128 hidden with ReLU and dropout, AdamW, a linear warm-up then cosine decay per step,
a reshuffled order each epoch, validation accuracy after each epoch), on the same images and the same train and
validation indices (a Mass trial's split.json). Prints one JSON line: the best value, its parameters, wall seconds.

With --judge PARAMS.json SEEDS it tunes nothing: it trains that configuration once per seed and prints the mean
accuracy on the test images (t10k) at each run's best epoch (the highest validation accuracy, the lower validation
loss between equal ones, as Mass keeps it).

usage: tune_cnn_optuna.py TUNE.json SPLIT.json SEED THREADS [--judge PARAMS.json SEEDS]
"""
import gzip
import json
import math
import sys

import numpy as np
import torch

from optuna_study import BestEpoch, tune_or_judge


def idx(path):
    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    tune = json.load(open(sys.argv[1]))
    split = json.load(open(sys.argv[2]))
    seed, threads = int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    folder = tune["base"]["dataset"]["path"]
    images = torch.from_numpy(idx(f"{folder}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    labels = torch.from_numpy(idx(f"{folder}/train-labels-idx1-ubyte.gz").astype(np.int64))
    train_part, validation = torch.tensor(split["train"]), torch.tensor(split["validation"])
    base = tune["base"].get("images", {})
    epochs = base.get("epochs", 5)
    watched = tune.get("intermediate", tune["objective"])["metric"]

    test_images = torch.from_numpy(idx(f"{folder}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    test_labels = torch.from_numpy(idx(f"{folder}/t10k-labels-idx1-ubyte.gz").astype(np.int64))

    def scored(model, xs, ys):
        """(accuracy, mean cross-entropy) of `model` on images `xs`, in chunks of 256."""
        correct, loss = 0, 0.0
        with torch.no_grad():
            for start in range(0, len(xs), 256):
                logits = model(xs[start:start + 256])
                correct += (logits.argmax(1) == ys[start:start + 256]).sum().item()
                loss += torch.nn.functional.cross_entropy(logits, ys[start:start + 256], reduction="sum").item()
        return correct / len(xs), loss / len(xs)

    def train(p, seed, report=None):
        """The ConvNet for parameters `p`: (the best validation accuracy, the test accuracy at the best epoch)."""
        get = lambda key, default: p.get("images." + key, base.get(key, default))
        lr, wd, dropout = get("learning_rate", 1e-3), get("weight_decay", 1e-4), get("dropout", 0.25)
        batch, warmup = get("batch_size", 64), get("warmup", 0.02)
        torch.manual_seed(seed)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(7 * 7 * 64, 128), torch.nn.ReLU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(128, 10))
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
        total = math.ceil(len(train_part) / batch) * epochs
        warm = int(total * warmup)
        schedule = lambda s: s / max(1, warm) if s < warm else 0.5 * (1 + math.cos(math.pi * min(1, (s - warm) / max(1, total - warm))))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        generator = torch.Generator().manual_seed(seed)
        tracker = BestEpoch(report, watched)
        for epoch in range(1, epochs + 1):
            model.train()
            order = train_part[torch.randperm(len(train_part), generator=generator)]
            for start in range(0, len(order), batch):
                b = order[start:start + batch]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(images[b]), labels[b]).backward()
                optimizer.step()
                scheduler.step()
            model.eval()
            accuracy, loss = scored(model, images[validation], labels[validation])
            tracker.epoch(epoch, accuracy, loss, lambda: scored(model, test_images, test_labels)[0])
        return tracker.best, tracker.test

    tune_or_judge(tune, train, seed, epochs, f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
