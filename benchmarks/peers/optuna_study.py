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
