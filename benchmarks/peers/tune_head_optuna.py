#!/usr/bin/env python3
"""Peer for `mass tune` on a text-classification-head study, measurement only: Optuna 5's TPE sampler and
Hyperband pruner over the same search space, budget and objective (best validation accuracy of the head over its
epochs), the head trained in PyTorch as Mass's HeadTraining trains it (nn.Linear layers with PyTorch's default
initialisation, an optional hidden ReLU layer, AdamW, cross-entropy with label smoothing, a reshuffled order each
epoch, the validation accuracy reported after each epoch), on the very embeddings Mass computed (its vectors cache)
and the same split (a trial's split.json). Prints one JSON line: the best value, its parameters, wall seconds.

With --judge PARAMS.json SEEDS (a JSON object of parameters, comma-separated training seeds) it tunes nothing: it
trains that configuration once per seed and prints the mean test accuracy at each run's best epoch (the highest
validation accuracy, the lower validation loss between equal ones, as Mass keeps it), to judge what a study found
on data neither study saw.

usage: tune_head_optuna.py TUNE.json EMBEDDINGS.safetensors SPLIT.json SEED [--judge PARAMS.json SEEDS]
"""
import csv
import json
import sys

import torch
from safetensors.torch import load_file

from optuna_study import BestEpoch, tune_or_judge


def main():
    tune = json.load(open(sys.argv[1]))
    x = load_file(sys.argv[2])["vectors"].float()
    split = json.load(open(sys.argv[3]))
    seed = int(sys.argv[4])
    d = tune["base"]["dataset"]
    labels = d["labels"]
    y = []
    with open(d["path"], newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row[d.get("label", "label")] in labels:
                y.append(labels.index(row[d.get("label", "label")]))
    y = torch.tensor(y)
    assert len(y) == x.shape[0], (len(y), x.shape)
    train_part, validation = torch.tensor(split["train"]), torch.tensor(split["validation"])
    head = tune["base"].get("head", {})
    epochs = head.get("epochs", 100)
    watched = tune.get("intermediate", tune["objective"])["metric"]
    torch.set_num_threads(2)

    test = torch.tensor(split["test"])

    def train(p, seed, report=None):
        """The head for parameters `p`: (the best validation accuracy, the test accuracy at the best epoch)."""
        hidden = p.get("head.hidden", head.get("hidden", 0))
        lr = p.get("head.learning_rate", head.get("learning_rate", 1e-2))
        wd = p.get("head.weight_decay", head.get("weight_decay", 1e-4))
        smoothing = p.get("head.label_smoothing", head.get("label_smoothing", 0))
        batch = p.get("head.batch_size", head.get("batch_size", 64))
        torch.manual_seed(seed)
        width = x.shape[1]
        layers = [torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, len(labels))] if hidden \
            else [torch.nn.Linear(width, len(labels))]
        model = torch.nn.Sequential(*layers)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
        loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)
        tracker = BestEpoch(report, watched)
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(1, epochs + 1):
            order = train_part[torch.randperm(len(train_part), generator=generator)]
            model.train()
            for start in range(0, len(order), batch):
                b = order[start:start + batch]
                optimizer.zero_grad()
                loss_fn(model(x[b]), y[b]).backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                logits = model(x[validation])
                accuracy = (logits.argmax(1) == y[validation]).float().mean().item()
                loss = torch.nn.functional.cross_entropy(logits, y[validation]).item()
                tracker.epoch(epoch, accuracy, loss,
                              lambda: (model(x[test]).argmax(1) == y[test]).float().mean().item())
        return tracker.best, tracker.test

    tune_or_judge(tune, train, seed, epochs, f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
