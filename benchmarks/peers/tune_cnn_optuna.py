#!/usr/bin/env python3
"""Peer for `mass tune` on an image-classification-cnn study, measurement only: Optuna 5's TPE sampler and
Hyperband pruner over the same search space, budget and objective (best validation accuracy over the epochs), the
ConvNet trained in PyTorch as Mass's ImageTraining trains it (two 3x3 convolutions of 32 and 64 channels with
ReLU and 2x2 max pooling, 128 hidden with ReLU and dropout, AdamW, a linear warm-up then cosine decay per step,
a reshuffled order each epoch, validation accuracy after each epoch), on the same images and the same train and
validation indices (a Mass trial's split.json). Prints one JSON line: the best value, its parameters, wall seconds.

usage: tune_cnn_optuna.py TUNE.json SPLIT.json SEED THREADS
"""
import gzip
import json
import math
import sys
import time

import numpy as np
import optuna
import torch


def idx(path):
    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def suggest(trial, name, spec):
    if spec["type"] == "categorical":
        return trial.suggest_categorical(name, spec["choices"])
    if spec["type"] == "int":
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=spec.get("log", False),
                                 step=int(spec.get("step", 1)))
    return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step"))


def main():
    tune = json.load(open(sys.argv[1]))
    split = json.load(open(sys.argv[2]))
    seed, threads = int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    folder = tune["base"]["dataset"]["path"]
    images = torch.from_numpy(idx(f"{folder}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    labels = torch.from_numpy(idx(f"{folder}/train-labels-idx1-ubyte.gz").astype(np.int64))
    train, validation = torch.tensor(split["train"]), torch.tensor(split["validation"])
    base = tune["base"].get("images", {})
    epochs = base.get("epochs", 5)
    watched = tune.get("intermediate", tune["objective"])["metric"]

    def objective(trial):
        p = {name: suggest(trial, name, spec) for name, spec in sorted(tune["space"].items())}
        get = lambda key, default: p.get("images." + key, base.get(key, default))
        lr, wd, dropout = get("learning_rate", 1e-3), get("weight_decay", 1e-4), get("dropout", 0.25)
        batch, warmup = get("batch_size", 64), get("warmup", 0.02)
        torch.manual_seed(42)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Linear(7 * 7 * 64, 128), torch.nn.ReLU(), torch.nn.Dropout(dropout),
            torch.nn.Linear(128, 10))
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
        total = math.ceil(len(train) / batch) * epochs
        warm = int(total * warmup)
        schedule = lambda s: s / max(1, warm) if s < warm else 0.5 * (1 + math.cos(math.pi * min(1, (s - warm) / max(1, total - warm))))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        generator = torch.Generator().manual_seed(42)
        best = 0.0
        for epoch in range(1, epochs + 1):
            model.train()
            order = train[torch.randperm(len(train), generator=generator)]
            for start in range(0, len(order), batch):
                b = order[start:start + batch]
                optimizer.zero_grad()
                torch.nn.functional.cross_entropy(model(images[b]), labels[b]).backward()
                optimizer.step()
                scheduler.step()
            model.eval()
            correct = 0
            with torch.no_grad():
                for start in range(0, len(validation), 256):
                    v = validation[start:start + 256]
                    correct += (model(images[v]).argmax(1) == labels[v]).sum().item()
            accuracy = correct / len(validation)
            best = max(best, accuracy)
            trial.report(best if watched.startswith("best_") else accuracy, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = tune.get("pruner", {})
    study = optuna.create_study(
        direction=tune["objective"]["direction"], sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=pruner.get("min_resource", 1), max_resource=epochs,
                                              reduction_factor=pruner.get("reduction_factor", 3)))
    started = time.time()
    study.optimize(objective, n_trials=tune["budget"]["trials"])
    seconds = time.time() - started
    states = [t.state.name.lower() for t in study.trials]
    print(json.dumps({"peer": f"optuna {optuna.__version__} TPE + Hyperband, torch {torch.__version__}",
                      "seed": seed, "best": study.best_value, "params": study.best_params,
                      "seconds": round(seconds, 2), "counts": {s: states.count(s) for s in sorted(set(states))}}))


if __name__ == "__main__":
    main()
