#pragma once
/// Umbrella header of the runtime layer: tensors-in, tensors-out primitives.
#include <ppl/runtime/device.hpp>
