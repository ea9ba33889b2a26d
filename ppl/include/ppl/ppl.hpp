#pragma once
/// The eDSL: distributions, sites, plates, effect handlers, traces.
///   #include <ppl/ppl.hpp>
///   namespace d = ppl::dist;
#include <ppl/config.hpp>
#include <ppl/constraints.hpp>
#include <ppl/core/archive.hpp>
#include <ppl/core/atomic_file.hpp>
#include <ppl/core/check.hpp>
#include <ppl/core/enumerate.hpp>
#include <ppl/core/errors.hpp>
#include <ppl/core/handler.hpp>
#include <ppl/core/handlers.hpp>
#include <ppl/core/markov.hpp>
#include <ppl/core/message.hpp>
#include <ppl/core/param_store.hpp>
#include <ppl/core/plate.hpp>
#include <ppl/core/random.hpp>
#include <ppl/core/reflect.hpp>
#include <ppl/core/sites.hpp>
#include <ppl/core/tensor_json.hpp>
#include <ppl/core/trace.hpp>
#include <ppl/dist.hpp>
#include <ppl/transforms.hpp>
