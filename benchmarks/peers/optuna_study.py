"""What the Optuna peers of `mass tune` share, measurement only: a Mass search space's parameters suggested to
an Optuna trial, the --judge mode (a configuration trained once per seed, its mean test accuracy printed), and the
study itself (TPE with the sampler seed, Hyperband as the Mass configuration's pruner, the trial budget), printed as
one JSON line.
"""
import json
import sys
import time

import optuna


def suggest(trial, name, spec):
    """The value of parameter `name` (a Mass search-space entry) for `trial`."""
    if spec["type"] == "categorical":
        return trial.suggest_categorical(name, spec["choices"])
    if spec["type"] == "int":
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=spec.get("log", False),
                                 step=int(spec.get("step", 1)))
    return trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False), step=spec.get("step"))


def parameters(trial, tune):
    """Every parameter of the study's space for `trial`, in a fixed order."""
    return {name: suggest(trial, name, spec) for name, spec in sorted(tune["space"].items())}


def judged(train):
    """With --judge PARAMS.json SEEDS on the command line: prints the mean test accuracy of `train(params, seed)`
    (which answers the best validation and the test accuracy) over the seeds, and answers True."""
    if "--judge" not in sys.argv:
        return False
    at = sys.argv.index("--judge")
    params = json.load(open(sys.argv[at + 1]))
    seeds = [int(s) for s in sys.argv[at + 2].split(",")]
    tests = [train(params, s)[1] for s in seeds]
    print(json.dumps({"params": params, "seeds": seeds, "test": tests, "mean_test": sum(tests) / len(tests)}))
    return True


def reporter(trial):
    """A report(value, step) for a training loop: the value to Optuna, TrialPruned when the pruner says so."""
    def report(value, step):
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return report


def run(tune, objective, seed, max_resource, peer):
    """Optuna's TPE + Hyperband over `objective` with the Mass configuration's budget; prints the result."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = tune.get("pruner", {})
    study = optuna.create_study(
        direction=tune["objective"]["direction"], sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.HyperbandPruner(min_resource=pruner.get("min_resource", 1), max_resource=max_resource,
                                              reduction_factor=pruner.get("reduction_factor", 3)))
    started = time.time()
    study.optimize(objective, n_trials=tune["budget"]["trials"])
    seconds = time.time() - started
    states = [t.state.name.lower() for t in study.trials]
    print(json.dumps({"peer": f"optuna {optuna.__version__} TPE + Hyperband, {peer}", "seed": seed,
                      "best": study.best_value, "params": study.best_params, "seconds": round(seconds, 2),
                      "counts": {s: states.count(s) for s in sorted(set(states))}}))


class BestEpoch:
    """Mass's early-stopping bookkeeping for a PyTorch loop: the best validation accuracy (an equal one with a lower
    validation loss is better), the test accuracy at that epoch when judging, and each epoch's report to the pruner
    (this epoch's accuracy, or the best so far when it watches a "best_" metric)."""

    def __init__(self, report, watched):
        self.report, self.watched = report, watched
        self.best, self.loss, self.test = 0.0, float("inf"), 0.0

    def epoch(self, epoch, accuracy, loss, test):
        """Records an epoch; `test()` gives the test accuracy, asked only when judging, at a new best."""
        if accuracy > self.best or (accuracy == self.best and loss < self.loss):
            if not self.report:
                self.test = test()
            self.best, self.loss = accuracy, loss
        if self.report:
            self.report(self.best if self.watched.startswith("best_") else accuracy, epoch)


def tune_or_judge(tune, train, seed, epochs, peer):
    """The --judge mode when asked, else the study over `train(params, 42, report)` (the best validation first)."""
    if judged(train):
        return
    run(tune, lambda trial: train(parameters(trial, tune), 42, reporter(trial))[0], seed, epochs, peer)
