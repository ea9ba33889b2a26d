#pragma once
/// The inference layer: ELBO and IWAE objectives, importance sampling, SVI,
/// autoguides, Predictive, enumeration and MCMC (NUTS, HMC).
///   #include <ppl/inference.hpp>
#include <ppl/ppl.hpp>
#include <ppl/infer/autoguide/auto_delta.hpp>
#include <ppl/infer/autoguide/auto_low_rank_multivariate_normal.hpp>
#include <ppl/infer/autoguide/auto_multivariate_normal.hpp>
#include <ppl/infer/autoguide/auto_normal.hpp>
#include <ppl/infer/checkpoint.hpp>
#include <ppl/infer/elbo.hpp>
#include <ppl/infer/enum/infer_discrete.hpp>
#include <ppl/infer/importance.hpp>
#include <ppl/infer/mcmc.hpp>
#include <ppl/infer/optim.hpp>
#include <ppl/infer/predictive.hpp>
#include <ppl/infer/svi.hpp>
