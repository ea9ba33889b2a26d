#pragma once
/// Umbrella header of the runtime layer: tensors-in, tensors-out primitives.
#include <ppl/runtime/device.hpp>
#include <ppl/runtime/render.hpp>
#include <ppl/runtime/composite.hpp>
#include <ppl/runtime/stn.hpp>
