#pragma once
/// The inference layer: ELBO and IWAE objectives, importance sampling, SVI.
///   #include <ppl/inference.hpp>
#include <ppl/ppl.hpp>
#include <ppl/infer/checkpoint.hpp>
#include <ppl/infer/elbo.hpp>
#include <ppl/infer/importance.hpp>
#include <ppl/infer/optim.hpp>
#include <ppl/infer/svi.hpp>
