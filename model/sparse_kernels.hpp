// The inner loop of sparse inference, free of LibTorch: rows of a sparse weight matrix times dense source
// rows. Each non-zero carries its own source pointer, so a caller folds concatenation, depth shift and the
// 3×3 taps into the pointers instead of copying (the same packed rows could feed a CUDA kernel later).
#pragma once

#include <cstdint>
#include <string>

namespace e2e {

enum class SparseKernel { Auto, Avx512, Avx2, Scalar };

// "auto" | "avx512" | "avx2" | "scalar"; throws std::invalid_argument naming the value otherwise.
SparseKernel parse_sparse_kernel(const std::string& name);
const char* to_string(SparseKernel kernel);
// The widest kernel this CPU runs (Auto resolved); a requested kernel the CPU lacks falls back to the next.
SparseKernel resolve_sparse_kernel(SparseKernel requested);

// out[r·out_stride + k] = Σ_{e ∈ [row_start[r], row_start[r+1])} weight[e] · source[e][k] for k < length.
struct SparseRowsCall {
  int64_t rows = 0;
  const int32_t* row_start = nullptr;  // rows + 1 entries
  const float* weight = nullptr;
  const float* const* source = nullptr;  // one pointer per non-zero, each readable for `length` floats
  int64_t length = 0;
  float* out = nullptr;
  int64_t out_stride = 0;
};

void sparse_rows(const SparseRowsCall& call, SparseKernel kernel);

}  // namespace e2e
