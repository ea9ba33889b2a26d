#pragma once
/// The scene-structure evaluations of GNM and its baselines (Jiang & Ahn
/// 2020, section 4, Table 1), made automatic.
///
/// S-Acc, scene structure accuracy: the paper classified 250 generated
/// images per model by hand into success or failure of the dataset's
/// structure rules, an unrecognisable digit counting as a failure. Here a
/// scene reader does it: threshold, 8-connected components, and a digit
/// classifier on each component's normalised crop give the digits (class
/// and centre), and the runtime's structure checker (check_mnist4,
/// check_mnist10, check_mnist4_10) decides.
///
/// D-Steps, discriminability: the number of optimisation steps a fixed
/// binary CNN needs to separate a model's generated images from real ones
/// with 90 % held-out accuracy. Higher is better.
///
/// One header per part: digit_classifier.hpp, scene_reader.hpp (S-Acc),
/// discriminability.hpp (D-Steps) and boxes.hpp (Table 4's boxes); this one
/// includes them all.
#include <ppl/programs/gnm/boxes.hpp>
#include <ppl/programs/gnm/digit_classifier.hpp>
#include <ppl/programs/gnm/discriminability.hpp>
#include <ppl/programs/gnm/scene_reader.hpp>
