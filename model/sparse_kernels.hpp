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

// A 3×3 conv (padding 1) over one depth slice, packed by whole kernels: output channel o sums kernels
// kernel_start[o]..kernel_start[o+1], kernel k reading the unpadded plane source[k] (height rows of width
// floats; nullptr: a plane of zeros, e.g. a channel shifted past the volume) with the 9 weights
// weight[9k..9k+8] (row-major taps, inactive taps 0). Output rows [row_begin, row_end) of every channel:
// out[o·out_channel_stride + h·width + w] = bias[o] + Σ. The borders are handled in the kernel (rows
// outside read `zero_row`, columns outside are masked), so no padded copy of the inputs is made. Blocks of 4
// output rows share each loaded input vector across the kernel's 3 rows of taps (register blocking).
struct SparseConv3x3Call {
  int64_t out_channels = 0;
  const int32_t* kernel_start = nullptr;  // out_channels + 1 entries
  const float* weight = nullptr;          // 9 per kernel
  const float* const* source = nullptr;   // one plane per kernel, or nullptr
  const float* zero_row = nullptr;        // at least width + 16 zeros, readable from zero_row[-1]
  const float* bias = nullptr;            // out_channels
  int64_t height = 0;
  int64_t width = 0;
  int64_t row_begin = 0;
  int64_t row_end = 0;
  float* out = nullptr;
  int64_t out_channel_stride = 0;
};

// Whether sparse_conv3x3 has a vectorized kernel for `kernel` (Auto resolved); callers fall back to
// sparse_rows otherwise. The scalar version exists for tests.
bool sparse_conv3x3_vectorized(SparseKernel kernel);
void sparse_conv3x3(const SparseConv3x3Call& call, SparseKernel kernel);

}  // namespace e2e
