"""Prints Optuna 5's Parzen estimator log densities for the cases SamplerTests checks Mass's against.

Offline only (the peer venv: ../shared/peers/setup.sh, then pip install optuna==5.1.0); the printed numbers are
pasted into Tests/MassTuningTests/SamplerTests.swift. Observations are given in Optuna's internal representation
(categorical: the choice's index).
"""

import numpy as np
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers._tpe.parzen_estimator import _ParzenEstimator, _ParzenEstimatorParameters
from optuna.samplers._tpe.sampler import default_weights

params = _ParzenEstimatorParameters(
    prior_weight=1.0, consider_magic_clip=True, consider_endpoints=False, weights=default_weights, multivariate=True
)


def show(name, observations, space, samples):
    pe = _ParzenEstimator({k: np.asarray(v, dtype=float) for k, v in observations.items()}, space, params)
    values = pe.log_pdf({k: np.asarray(v, dtype=float) for k, v in samples.items()})
    print(name, [repr(float(v)) for v in values])


show("one float", {"x": [0.2]}, {"x": FloatDistribution(0, 1)}, {"x": [0.2, 0.9]})
show("four floats", {"x": [0.1, 0.15, 0.6, 0.8]}, {"x": FloatDistribution(0, 1)}, {"x": [0.12, 0.7, 0.99]})
show("int grid", {"n": [2, 4]}, {"n": IntDistribution(1, 5)}, {"n": [1, 3, 5]})
show("log float", {"lr": [1e-3, 1e-2]}, {"lr": FloatDistribution(1e-5, 1, log=True)}, {"lr": [1e-3, 0.5]})
show(
    "joint",
    {"x": [0.1, 0.9, 0.4], "kind": [1, 1, 0]},
    {"x": FloatDistribution(0, 1), "kind": CategoricalDistribution(["a", "b", "c"])},
    {"x": [0.1, 0.1, 0.5], "kind": [1, 0, 2]},
)
