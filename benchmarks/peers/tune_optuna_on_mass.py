#!/usr/bin/env python3
"""Peer for `mass tune`, measurement only: Optuna 5's TPE sampler and Hyperband pruner driving the very objective
a Mass study's trials run, `mass train` on the study's base configuration with the sampled parameters, so the two
studies differ only in the tuner (sampler, pruner, scheduling), not in the trainer. Each trial runs `mass train
--reports` with THREADS threads (one at a time, as Optuna's `optimize` runs them): after each epoch the run prints
a `report {...}` line and waits for a verdict on its standard input; the intermediate value goes to
`trial.report`, `trial.should_prune()` answers ("prune" ends the run). The objective is the summary's metric.
Prints one JSON line: the best value, its parameters, wall seconds, trial counts.

usage: tune_optuna_on_mass.py TUNE.json SEED THREADS MASS VECTORS_CACHE WORK
"""
import json
import os
import shutil
import subprocess
import sys

import optuna

from optuna_study import parameters, run


def main():
    tune = json.load(open(sys.argv[1]))
    seed, threads, mass, cache, work = int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
    objective_metric = tune["objective"]["metric"]
    watched = tune.get("intermediate", tune["objective"])["metric"]
    os.makedirs(work, exist_ok=True)

    def objective(trial):
        params = parameters(trial, tune)
        config = json.loads(json.dumps(tune["base"]))
        for name, value in params.items():
            section, key = name.split(".", 1)
            config.setdefault(section, {})[key] = value
        out = os.path.join(work, f"trial-{trial.number}")
        shutil.rmtree(out, ignore_errors=True)
        config["output"] = out
        path = out + ".json"
        json.dump(config, open(path, "w"))
        run = subprocess.Popen([mass, "train", path, "--threads", threads, "--reports", "--exit-with-stdin",
                                "--vectors-cache", cache],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for line in run.stderr:
            line = line.rstrip("\n").split("\r")[-1]
            if not line.startswith("report {"):
                continue
            report = json.loads(line[len("report "):])
            trial.report(report[watched], int(report["step"]))
            prune = report["step"] < report["epochs"] and trial.should_prune()
            run.stdin.write("prune\n" if prune else "continue\n")
            run.stdin.flush()
            if prune:
                run.wait()
                raise optuna.TrialPruned()
        summary = run.stdout.read()
        if run.wait() != 0:
            raise RuntimeError(f"mass train failed for {params}")
        return json.loads(summary)[objective_metric]

    pruner = tune.get("pruner", {})
    run(tune, objective, seed, pruner.get("max_resource", "auto"), "on mass train")


if __name__ == "__main__":
    main()
