// A GNM small enough for unit tests, shared by the program and evaluation tests.
#pragma once

#include <ppl/programs/gnm/gnm.hpp>

namespace ppl::test {

/// GNM on 16 x 16 images with a 4 x 4 structure map, 16 channels, three
/// StructDRAW steps and 4-dimensional z_g/l and z_what.
inline ppl::programs::gnm::GnmOptions small_gnm() {
  auto o = ppl::programs::gnm::GnmOptions::defaults();
  o.image_size = 16;
  o.channels = 16;
  o.draw_steps = 3;
  o.z_global_size = 4;
  o.interaction_hidden = 32;
  o.z_what_size = 4;
  o.z_bg_size = 3;
  o.glimpse_size = 8;
  return o;
}

}  // namespace ppl::test
