#pragma once
/// All distributions of ppl::dist, and analytic KL divergences.
#include <ppl/dist/bernoulli.hpp>
#include <ppl/dist/beta.hpp>
#include <ppl/dist/binary_success.hpp>
#include <ppl/dist/categorical.hpp>
#include <ppl/dist/continuous_bernoulli.hpp>
#include <ppl/dist/delta.hpp>
#include <ppl/dist/distribution.hpp>
#include <ppl/dist/gamma.hpp>
#include <ppl/dist/gaussian_mixture.hpp>
#include <ppl/dist/laplace.hpp>
#include <ppl/dist/normal.hpp>
#include <ppl/dist/relaxed_bernoulli.hpp>
#include <ppl/dist/uniform.hpp>
