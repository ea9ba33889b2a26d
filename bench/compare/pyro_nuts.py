#!/usr/bin/python3
"""Pyro's NUTS on the models of bench/mcmc_bench.cpp, for
bench/compare/nuts_vs_pyro. Runs the chains one after another (Pyro's MCMC
with one chain each, one thread), times warm-up and sampling of each chain
separately, and writes the draws after warm-up, the times and the
divergences as JSON, with 0-based element names as ppl_bench_mcmc writes.

usage: pyro_nuts.py MODEL DATA.json OUT.json CHAINS WARMUP SAMPLES SEED [--jit]
"""
import json
import sys
import time

import torch

import pyro
import pyro.distributions as dist
from pyro.infer import MCMC, NUTS


def eight_schools(sigma, y):
    mu = pyro.sample("mu", dist.Normal(torch.tensor(0.0), 5.0))
    tau = pyro.sample("tau", dist.HalfCauchy(torch.tensor(5.0)))
    with pyro.plate("schools", y.shape[0]):
        theta_tilde = pyro.sample("theta_tilde", dist.Normal(torch.tensor(0.0), 1.0))
        pyro.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


def logistic(x, y):
    w = pyro.sample("w", dist.Normal(torch.zeros(x.shape[1]), 1.0).to_event(1))
    b = pyro.sample("b", dist.Normal(torch.tensor(0.0), 1.0))
    with pyro.plate("data", x.shape[0]):
        pyro.sample("y", dist.Bernoulli(logits=x @ w + b), obs=y)


def main():
    model_name, data_path, out_path = sys.argv[1:4]
    chains, warmup, samples, seed = (int(a) for a in sys.argv[4:8])
    jit = "--jit" in sys.argv[8:]
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    with open(data_path) as f:
        data = json.load(f)
    if model_name == "eight_schools":
        model, args = eight_schools, (torch.tensor(data["sigma"]), torch.tensor(data["y"]))
    elif model_name == "logistic":
        model, args = logistic, (torch.tensor(data["X"]), torch.tensor(data["y"]))
    else:
        sys.exit(f"pyro_nuts.py: unknown model {model_name!r} (eight_schools, logistic)")

    params, warmup_seconds, sampling_seconds, step_sizes = {}, [], [], []
    divergences = 0
    for c in range(chains):
        pyro.set_rng_seed(seed + c)
        pyro.clear_param_store()
        kernel = NUTS(model, target_accept_prob=0.8, max_tree_depth=10, jit_compile=jit, ignore_jit_warnings=True)
        marks = {}

        def hook(kernel, draws, stage, i, marks=marks):
            # Called after each iteration: the first "Sample" call ends warm-up.
            if stage.startswith("Sample") and "warmup_end" not in marks:
                marks["warmup_end"] = marks.get("last", time.perf_counter())
            marks["last"] = time.perf_counter()

        mcmc = MCMC(kernel, num_samples=samples, warmup_steps=warmup, num_chains=1, hook_fn=hook,
                    disable_progbar=True)
        start = time.perf_counter()
        mcmc.run(*args)
        end = time.perf_counter()
        # The first sampling iteration's time is counted as sampling: the mark
        # is the end of the last warm-up iteration.
        warmup_seconds.append(marks["warmup_end"] - start)
        sampling_seconds.append(end - marks["warmup_end"])
        step_sizes.append(float(kernel.step_size))
        diagnostics = mcmc.diagnostics()
        divergences += sum(len(v) for v in diagnostics["divergences"].values())
        for name, value in mcmc.get_samples().items():
            value = value.reshape(value.shape[0], -1)
            if name in ("mu", "tau", "b"):
                names = [name]
            else:
                names = [f"{name}[{k}]" for k in range(value.shape[1])]
            for k, element in enumerate(names):
                params.setdefault(element, []).append(value[:, k].tolist())
    with open(out_path, "w") as f:
        json.dump({"implementation": "pyro" + ("-jit" if jit else ""), "model": model_name, "chains": chains,
                   "warmup": warmup, "draws": samples, "divergences": divergences,
                   "warmup_seconds": warmup_seconds, "sampling_seconds": sampling_seconds,
                   "step_size": step_sizes, "params": params}, f)


if __name__ == "__main__":
    main()
