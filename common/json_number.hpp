// The one rule for numbers that may be NaN or infinite in JSON: non-finite → null (JSON has no NaN).
// Readers map null back to NaN where a missing value is meaningful.
#pragma once

#include <cmath>

#include <nlohmann/json.hpp>

namespace e2e {

template <typename Json = nlohmann::json>
Json json_number(double value) {
  return std::isfinite(value) ? Json(value) : Json(nullptr);
}

}  // namespace e2e
