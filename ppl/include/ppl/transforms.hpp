#pragma once
/// All transforms of ppl::transforms and `biject_to`.
#include <ppl/transforms/affine.hpp>
#include <ppl/transforms/biject_to.hpp>
#include <ppl/transforms/cholesky_outer.hpp>
#include <ppl/transforms/compose.hpp>
#include <ppl/transforms/corr_cholesky.hpp>
#include <ppl/transforms/exp.hpp>
#include <ppl/transforms/lower_cholesky.hpp>
#include <ppl/transforms/ordered.hpp>
#include <ppl/transforms/sigmoid.hpp>
#include <ppl/transforms/softplus.hpp>
#include <ppl/transforms/stick_breaking.hpp>
#include <ppl/transforms/tanh.hpp>
#include <ppl/transforms/transform.hpp>
