#pragma once
/// Markov chain Monte Carlo over a model's continuous latents: the kernels
/// (`Nuts`, `Hmc`), the driver (`Mcmc`), warm-up adaptation and diagnostics.
#include <ppl/infer/mcmc/adaptation.hpp>
#include <ppl/infer/mcmc/diagnostics.hpp>
#include <ppl/infer/mcmc/hmc.hpp>
#include <ppl/infer/mcmc/kernel.hpp>
#include <ppl/infer/mcmc/mcmc.hpp>
#include <ppl/infer/mcmc/nuts.hpp>
#include <ppl/infer/mcmc/potential.hpp>
