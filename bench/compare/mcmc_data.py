#!/usr/bin/python3
"""Writes the data of the NUTS comparisons (bench/compare/nuts_vs_stan):

  eight_schools.json  the eight schools of Rubin (1981): y and sigma;
  logistic.json       1,000 points with 20 standard-normal features X and
                      labels y ~ Bernoulli(sigmoid(X w + b)), w ~ N(0, I), b = 0.5
                      (numpy's generator seeded with 0).

usage: mcmc_data.py OUT_DIR
"""
import json
import sys

import numpy as np

out = sys.argv[1]
with open(f"{out}/eight_schools.json", "w") as f:
    json.dump({"y": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
               "sigma": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0]}, f)

rng = np.random.default_rng(0)
n, d = 1000, 20
x = rng.normal(size=(n, d))
w = rng.normal(size=d)
logits = x @ w + 0.5
y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logits))).astype(float)
with open(f"{out}/logistic.json", "w") as f:
    json.dump({"X": np.round(x, 6).tolist(), "y": y.tolist()}, f)
