// SGD momentum of one parameter, for the code that masks it (DSFF) or hashes it (checkpoints).
//
// LibTorch keys an optimizer's per-parameter state by the parameter's TensorImpl: by the pointer itself in
// current 2.x releases (as void*), by the pointer printed as a string in 1.13. One lookup that compiles with
// both.
#pragma once

#include <torch/torch.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace e2e {

// The parameter's SGD momentum buffer; undefined when the optimizer holds none (yet) for it. A template so
// that only the branch for this LibTorch's key type is compiled.
template <typename Optimizer>
torch::Tensor sgd_momentum_buffer(Optimizer& optimizer, const torch::Tensor& parameter) {
  auto& state = optimizer.state();
  using Key = typename std::decay_t<decltype(state)>::key_type;
  auto found = [&] {
    if constexpr (std::is_same_v<Key, std::string>) {
      std::ostringstream address;  // the format of 1.13's c10::guts::to_string(TensorImpl*)
      address << static_cast<const void*>(parameter.unsafeGetTensorImpl());
      return state.find(address.str());
    } else {
      return state.find(static_cast<Key>(parameter.unsafeGetTensorImpl()));
    }
  }();
  if (found == state.end()) return {};
  auto* sgd = dynamic_cast<torch::optim::SGDParamState*>(found->second.get());
  return sgd ? sgd->momentum_buffer() : torch::Tensor();
}

}  // namespace e2e
