#pragma once
/// Umbrella header of the runtime layer: tensors-in, tensors-out primitives.
#include <ppl/runtime/device.hpp>
#include <ppl/runtime/render.hpp>
#include <ppl/runtime/composite.hpp>
#include <ppl/runtime/stn.hpp>
#include <ppl/runtime/image.hpp>
#include <ppl/runtime/data/dataset.hpp>
#include <ppl/runtime/data/formats.hpp>
#include <ppl/runtime/data/transforms.hpp>
#include <ppl/runtime/data/loader.hpp>
#include <ppl/runtime/data/registry.hpp>
#include <ppl/runtime/data/scenes.hpp>
