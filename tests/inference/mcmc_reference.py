#!/usr/bin/python3
"""Expected values of the MCMC diagnostics test (tests/inference/mcmc_test.cpp).

Run once by hand; its output was pasted into the test. Fixed short chains are
drawn here with numpy and printed with two decimals (as they appear in the
test); the diagnostics are then computed from the printed values, following
the definitions of the Stan reference manual (Vehtari et al. 2021):
split chains, Blom rank normalisation, R-hat from within- and between-chain
variances, ESS from the combined autocorrelations truncated by Geyer's initial
positive sequence and made monotone.
"""
from statistics import NormalDist

import numpy as np


def chains_ar1(rng, m, n, phi, offsets):
    x = np.zeros((m, n))
    for c in range(m):
        v = rng.normal()
        for i in range(n):
            v = phi * v + rng.normal()
            x[c, i] = v + offsets[c]
    return np.round(x, 2)


def halves(x):
    h = x.shape[1] // 2
    return np.vstack([x[:, :h], x[:, x.shape[1] - h:]])


def normal_scores(x):
    flat = x.ravel()
    s = flat.size
    order = np.argsort(flat, kind="stable")
    ranks = np.empty(s)
    i = 0
    while i < s:
        j = i
        while j + 1 < s and flat[order[j + 1]] == flat[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    inv = NormalDist().inv_cdf
    return np.array([inv((r - 0.375) / (s + 0.25)) for r in ranks]).reshape(x.shape)


def within_and_total(x):
    m, n = x.shape
    w = np.var(x, axis=1, ddof=1).mean()
    total = (n - 1) / n * w + (np.var(x.mean(axis=1), ddof=1) if m > 1 else 0.0)
    return w, total


def r_hat(x):
    w, total = within_and_total(x)
    return float(np.sqrt(total / w))


def eff_size(x):
    m, n = x.shape
    w, total = within_and_total(x)
    centred = x - x.mean(axis=1, keepdims=True)

    def rho(t):
        acov = (centred[:, : n - t] * centred[:, t:]).sum(axis=1) / n
        return 1 - (w - acov.mean()) / total

    # Pairs rho(2k) + rho(2k + 1) while positive, lags up to n - 3.
    pairs, k = [1 + rho(1)], 1
    last_even, limit = None, True
    while 2 * k + 1 <= n - 3:
        even, odd = rho(2 * k), rho(2 * k + 1)
        if even + odd <= 0:
            last_even, limit = max(even, 0.0), False
            break
        pairs.append(even + odd)
        last_even = even
        k += 1
    if limit and len(pairs) > 1:
        # Every pair up to the lag limit is positive: the last one counts
        # with its even lag only, as a first non-positive pair would.
        pairs.pop()
    elif limit:
        last_even = 1.0
    tau = -1 + 2 * np.minimum.accumulate(pairs).sum() + last_even
    tau = max(tau, 1 / np.log10(m * n))
    return float(m * n / tau)


def report(name, x):
    split = halves(x)
    folded = np.abs(split - np.quantile(x, 0.5))
    tail = min(eff_size((split <= np.quantile(x, q)).astype(float)) for q in (0.05, 0.95))
    values = {
        "split_rhat": r_hat(split),
        "rank_normalized_rhat": max(r_hat(normal_scores(split)), r_hat(normal_scores(folded))),
        "ess_basic": eff_size(x),
        "ess_mean": eff_size(split),
        "ess_bulk": eff_size(normal_scores(split)),
        "ess_tail": tail,
        "q05": float(np.quantile(x, 0.05)),
        "q50": float(np.quantile(x, 0.5)),
    }
    print(f"// {name}")
    print("const Chains k" + name + " = {")
    for row in x:
        print("    {" + ", ".join(f"{v:.2f}" for v in row) + "},")
    print("};")
    for key, v in values.items():
        print(f"//   {key} = {v:.10g}")


rng = np.random.default_rng(20240611)
report("Mixing", chains_ar1(rng, 4, 24, 0.6, [0, 0, 0, 0]))
report("Apart", chains_ar1(rng, 3, 20, 0.3, [0, 0.8, 1.6]))
report("Antithetic", chains_ar1(rng, 2, 30, -0.6, [0, 0]))
