#pragma once
/// Tensors as JSON: {"dtype": "float32", "shape": [2, 3], "data": [[...], [...]]}.
/// Floating values are written with round-trip precision, and non-finite
/// ones as the strings "nan", "inf", "-inf", so a tensor written and read
/// back has the same bits (NaN payloads aside).
#include <cstdint>
#include <string_view>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

namespace ppl {

/// The JSON form of `t` (moved to the CPU, detached).
nlohmann::json tensor_to_json(const torch::Tensor& t);
/// Reads the JSON form back; throws ppl::Error naming the field at fault.
torch::Tensor tensor_from_json(const nlohmann::json& j);

/// `j` as an int64; ppl::Error saying `what` it is ("a size in \"shape\"")
/// unless it is a whole number in int64's range: a float or a huge
/// unsigned number is refused rather than converted out of range.
int64_t json_whole_number(const nlohmann::json& j, std::string_view what);

}  // namespace ppl
