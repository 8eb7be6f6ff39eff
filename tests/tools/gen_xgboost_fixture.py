"""Generates tests/data/xgboost: one booster trained by Debian's python3-xgboost 1.7.4, saved in
all three formats MLflow's xgboost flavor writes (model_format xgb / json / ubj), each in an
MLflow model folder with the MLmodel file mlflow 2.17.2's `mlflow.xgboost.save_model` writes
(MLFLOW.md §8; written here by hand because PyPI is not reachable), plus the rows to score and
Python's predictions for them. abgate's tests check that C++ predictions equal these to 1e-6.

Run (see DEPS.md for unpacking python3-xgboost and scipy next to Boost 1.81):
  PYTHONPATH=<xgboost root>/usr/lib/python3/dist-packages:<scipy root>/usr/lib/python3/dist-packages \
    /usr/bin/python3 tests/tools/gen_xgboost_fixture.py tests/data/xgboost
"""
import json
import os
import sys

import numpy as np
import xgboost as xgb

COLUMNS = ["lead_time_days", "nightly_price", "length_of_stay", "is_weekend",
           "loyalty_tier", "prior_bookings", "mobile", "search_rank"]


def rows(rng, n):
    return np.column_stack([
        rng.uniform(0, 365, n), rng.uniform(60, 600, n), rng.integers(1, 15, n),
        rng.integers(0, 2, n), rng.integers(0, 4, n), rng.poisson(2.0, n),
        rng.integers(0, 2, n), rng.integers(1, 21, n)]).astype(np.float64)


def mlmodel(fmt, filename):
    inputs = json.dumps([{"type": "double", "name": c, "required": True} for c in COLUMNS])
    return f"""artifact_path: model
flavors:
  python_function:
    data: {filename}
    env:
      conda: conda.yaml
      virtualenv: python_env.yaml
    loader_module: mlflow.xgboost
    python_version: 3.11.2
  xgboost:
    code: null
    data: {filename}
    model_class: xgboost.core.Booster
    model_format: {fmt}
    xgb_version: {xgb.__version__}
mlflow_version: 2.17.2
model_size_bytes: {os.path.getsize(filename) if os.path.exists(filename) else 0}
model_uuid: 6f1d3c2a9b8e4f7a8c5d0e1f2a3b4c5d
run_id: 1e239038eba0427e8249f91a08643b0c
signature:
  inputs: '{inputs}'
  outputs: '[{{"type": "tensor", "tensor-spec": {{"dtype": "float32", "shape": [-1]}}}}]'
  params: null
utc_time_created: '2026-11-26 10:58:24.502792'
"""


def main(out):
    rng = np.random.default_rng(20261126)
    X = rows(rng, 400)
    logit = -1.0 - 0.006 * X[:, 0] - 0.004 * (X[:, 1] - 300) + 0.5 * X[:, 4] + 0.3 * X[:, 6] - 0.08 * X[:, 7]
    y = (rng.uniform(size=len(X)) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    dtrain = xgb.DMatrix(X, label=y, feature_names=COLUMNS)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.3, "nthread": 1,
                         "seed": 7, "eval_metric": "auc"}, dtrain, num_boost_round=25)
    Xs = rows(np.random.default_rng(7), 40)
    Xs[3, 2] = np.nan  # a missing value goes down each tree's default branch
    preds = booster.predict(xgb.DMatrix(Xs, feature_names=COLUMNS))
    for fmt, filename in (("xgb", "model.xgb"), ("json", "model.json"), ("ubj", "model.ubj")):
        folder = os.path.join(out, f"model_{fmt}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, filename)
        booster.save_model(path)
        cwd = os.getcwd()
        os.chdir(folder)
        with open("MLmodel", "w") as f:
            f.write(mlmodel(fmt, filename))
        os.chdir(cwd)
    with open(os.path.join(out, "input.json"), "w") as f:
        json.dump({"columns": COLUMNS, "data": [[None if np.isnan(v) else float(v) for v in r] for r in Xs]}, f)
    with open(os.path.join(out, "expected_predictions.json"), "w") as f:
        json.dump({"xgboost_version": xgb.__version__, "predictions": [float(p) for p in preds]}, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
