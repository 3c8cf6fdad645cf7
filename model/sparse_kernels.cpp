#include "model/sparse_kernels.hpp"

#include <algorithm>
#include <stdexcept>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define E2E_X86 1
#endif

namespace e2e {

SparseKernel parse_sparse_kernel(const std::string& name) {
  if (name == "auto") return SparseKernel::Auto;
  if (name == "avx512") return SparseKernel::Avx512;
  if (name == "avx2") return SparseKernel::Avx2;
  if (name == "scalar") return SparseKernel::Scalar;
  throw std::invalid_argument("sparse kernel: expected auto, avx512, avx2 or scalar, got '" + name + "'");
}

const char* to_string(SparseKernel kernel) {
  switch (kernel) {
    case SparseKernel::Auto:
      return "auto";
    case SparseKernel::Avx512:
      return "avx512";
    case SparseKernel::Avx2:
      return "avx2";
    case SparseKernel::Scalar:
      return "scalar";
  }
  return "?";
}

namespace {

bool cpu_has_avx512() {
#ifdef E2E_X86
  return __builtin_cpu_supports("avx512f");
#else
  return false;
#endif
}

bool cpu_has_avx2() {
#ifdef E2E_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

void rows_scalar(const SparseRowsCall& c) {
  for (int64_t r = 0; r < c.rows; ++r) {
    float* out = c.out + r * c.out_stride;
    std::fill(out, out + c.length, 0.0f);
    for (int32_t e = c.row_start[r]; e < c.row_start[r + 1]; ++e) {
      const float w = c.weight[e];
      const float* src = c.source[e];
      for (int64_t k = 0; k < c.length; ++k) out[k] += w * src[k];
    }
  }
}

#ifdef E2E_X86

// One tile of NV vectors per row: the accumulators stay in registers over the row's non-zeros (one
// broadcast and NV loads + FMAs per non-zero). The last vector is masked so that no load runs past `length`.
template <int NV>
__attribute__((target("avx512f"))) void tile_avx512(const SparseRowsCall& c, int64_t offset, __mmask16 tail) {
  for (int64_t r = 0; r < c.rows; ++r) {
    __m512 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = _mm512_setzero_ps();
    for (int32_t e = c.row_start[r]; e < c.row_start[r + 1]; ++e) {
      const __m512 w = _mm512_set1_ps(c.weight[e]);
      const float* src = c.source[e] + offset;
      for (int v = 0; v < NV - 1; ++v) acc[v] = _mm512_fmadd_ps(w, _mm512_loadu_ps(src + 16 * v), acc[v]);
      acc[NV - 1] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(tail, src + 16 * (NV - 1)), acc[NV - 1]);
    }
    float* out = c.out + r * c.out_stride + offset;
    for (int v = 0; v < NV - 1; ++v) _mm512_storeu_ps(out + 16 * v, acc[v]);
    _mm512_mask_storeu_ps(out + 16 * (NV - 1), tail, acc[NV - 1]);
  }
}

__attribute__((target("avx512f"))) void rows_avx512(const SparseRowsCall& c) {
  constexpr int64_t kTile = 128;  // 8 zmm accumulators
  for (int64_t offset = 0; offset < c.length; offset += kTile) {
    const int64_t n = std::min(kTile, c.length - offset);
    const int vectors = static_cast<int>((n + 15) / 16);
    const int last = static_cast<int>(n - 16 * (vectors - 1));
    const __mmask16 tail = static_cast<__mmask16>((1u << last) - 1u);
    switch (vectors) {
      case 1:
        tile_avx512<1>(c, offset, tail);
        break;
      case 2:
        tile_avx512<2>(c, offset, tail);
        break;
      case 3:
        tile_avx512<3>(c, offset, tail);
        break;
      case 4:
        tile_avx512<4>(c, offset, tail);
        break;
      case 5:
        tile_avx512<5>(c, offset, tail);
        break;
      case 6:
        tile_avx512<6>(c, offset, tail);
        break;
      case 7:
        tile_avx512<7>(c, offset, tail);
        break;
      default:
        tile_avx512<8>(c, offset, tail);
        break;
    }
  }
}

template <int NV>
__attribute__((target("avx2,fma"))) void tile_avx2(const SparseRowsCall& c, int64_t offset, __m256i tail) {
  for (int64_t r = 0; r < c.rows; ++r) {
    __m256 acc[NV];
    for (int v = 0; v < NV; ++v) acc[v] = _mm256_setzero_ps();
    for (int32_t e = c.row_start[r]; e < c.row_start[r + 1]; ++e) {
      const __m256 w = _mm256_set1_ps(c.weight[e]);
      const float* src = c.source[e] + offset;
      for (int v = 0; v < NV - 1; ++v) acc[v] = _mm256_fmadd_ps(w, _mm256_loadu_ps(src + 8 * v), acc[v]);
      acc[NV - 1] = _mm256_fmadd_ps(w, _mm256_maskload_ps(src + 8 * (NV - 1), tail), acc[NV - 1]);
    }
    float* out = c.out + r * c.out_stride + offset;
    for (int v = 0; v < NV - 1; ++v) _mm256_storeu_ps(out + 8 * v, acc[v]);
    _mm256_maskstore_ps(out + 8 * (NV - 1), tail, acc[NV - 1]);
  }
}

__attribute__((target("avx2,fma"))) void rows_avx2(const SparseRowsCall& c) {
  constexpr int64_t kTile = 64;  // 8 ymm accumulators
  for (int64_t offset = 0; offset < c.length; offset += kTile) {
    const int64_t n = std::min(kTile, c.length - offset);
    const int vectors = static_cast<int>((n + 7) / 8);
    const int last = static_cast<int>(n - 8 * (vectors - 1));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32(last), lane);
    switch (vectors) {
      case 1:
        tile_avx2<1>(c, offset, tail);
        break;
      case 2:
        tile_avx2<2>(c, offset, tail);
        break;
      case 3:
        tile_avx2<3>(c, offset, tail);
        break;
      case 4:
        tile_avx2<4>(c, offset, tail);
        break;
      case 5:
        tile_avx2<5>(c, offset, tail);
        break;
      case 6:
        tile_avx2<6>(c, offset, tail);
        break;
      case 7:
        tile_avx2<7>(c, offset, tail);
        break;
      default:
        tile_avx2<8>(c, offset, tail);
        break;
    }
  }
}

// Rows h0..h0+R-1, columns c0..c0+16·NV of one output channel. Input row h0 − 1 + j feeds output row
// h0 + j − 1 − ky through kernel row ky, so each loaded vector meets up to 3 weights. The planes are not
// padded: rows outside the plane read the zero row, and the masks `lanes[kx][v]` keep each load inside its
// row (column x + kx − 1 in [0, width)); masked-off lanes read as 0 and never fault.
template <int R, int NV>
__attribute__((target("avx512f"))) void conv3x3_tile_avx512(const SparseConv3x3Call& c, int64_t o, int64_t h0,
                                                            int64_t c0, const __mmask16 (&lanes)[3][4],
                                                            __mmask16 store_tail) {
  __m512 acc[R][NV];
  const __m512 bias = _mm512_set1_ps(c.bias[o]);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = bias;
  for (int32_t k = c.kernel_start[o]; k < c.kernel_start[o + 1]; ++k) {
    const float* plane = c.source[k];
    if (!plane) continue;  // shifted past the volume: reads zeros
    const float* row[R + 2];
#pragma GCC unroll 8
    for (int j = 0; j < R + 2; ++j) {
      const int64_t h = h0 - 1 + j;
      row[j] = (h >= 0 && h < c.height ? plane + h * c.width : c.zero_row) + c0 - 1;
    }
    const float* w = c.weight + 9 * static_cast<int64_t>(k);
#pragma GCC unroll 3
    for (int kx = 0; kx < 3; ++kx) {
      const __m512 w0 = _mm512_set1_ps(w[kx]), w1 = _mm512_set1_ps(w[3 + kx]), w2 = _mm512_set1_ps(w[6 + kx]);
#pragma GCC unroll 8
      for (int j = 0; j < R + 2; ++j) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          const __m512 x = _mm512_maskz_loadu_ps(lanes[kx][v], row[j] + kx + 16 * v);
          if (j < R) acc[j][v] = _mm512_fmadd_ps(w0, x, acc[j][v]);
          if (j >= 1 && j - 1 < R) acc[j - 1][v] = _mm512_fmadd_ps(w1, x, acc[j - 1][v]);
          if (j >= 2) acc[j - 2][v] = _mm512_fmadd_ps(w2, x, acc[j - 2][v]);
        }
      }
    }
  }
  float* out = c.out + o * c.out_channel_stride + h0 * c.width + c0;
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 8
    for (int v = 0; v < NV - 1; ++v) _mm512_storeu_ps(out + r * c.width + 16 * v, acc[r][v]);
    _mm512_mask_storeu_ps(out + r * c.width + 16 * (NV - 1), store_tail, acc[r][NV - 1]);
  }
}

// Lanes of vector v of the tile at c0 whose input column c0 + 16v + lane + kx − 1 lies in [0, width).
inline __mmask16 lanes_inside(int64_t c0, int v, int kx, int64_t width) {
  const int64_t first = c0 + 16 * v + kx - 1;  // input column of lane 0
  const int64_t lo = std::max<int64_t>(0, -first), hi = std::min<int64_t>(16, width - first);
  if (hi <= lo) return 0;
  const uint32_t upto_hi = hi >= 16 ? 0xffffu : (1u << hi) - 1u;
  return static_cast<__mmask16>(upto_hi & ~((1u << lo) - 1u));
}

template <int R>
__attribute__((target("avx512f"))) void conv3x3_rows_avx512(const SparseConv3x3Call& c, int64_t h0) {
  constexpr int64_t kTile = 64;  // 4 vectors × R rows of accumulators
  for (int64_t c0 = 0; c0 < c.width; c0 += kTile) {
    const int64_t n = std::min(kTile, c.width - c0);
    const int vectors = static_cast<int>((n + 15) / 16);
    const int last = static_cast<int>(n - 16 * (vectors - 1));
    const __mmask16 store_tail = static_cast<__mmask16>((1u << last) - 1u);
    __mmask16 lanes[3][4];
    for (int kx = 0; kx < 3; ++kx)
      for (int v = 0; v < 4; ++v) lanes[kx][v] = lanes_inside(c0, v, kx, c.width);
    for (int64_t o = 0; o < c.out_channels; ++o) switch (vectors) {
        case 1:
          conv3x3_tile_avx512<R, 1>(c, o, h0, c0, lanes, store_tail);
          break;
        case 2:
          conv3x3_tile_avx512<R, 2>(c, o, h0, c0, lanes, store_tail);
          break;
        case 3:
          conv3x3_tile_avx512<R, 3>(c, o, h0, c0, lanes, store_tail);
          break;
        default:
          conv3x3_tile_avx512<R, 4>(c, o, h0, c0, lanes, store_tail);
          break;
      }
  }
}

__attribute__((target("avx512f"))) void conv3x3_avx512(const SparseConv3x3Call& c) {
  constexpr int64_t kRows = 4;
  for (int64_t h0 = c.row_begin; h0 < c.row_end; h0 += kRows) switch (std::min(kRows, c.row_end - h0)) {
      case 1:
        conv3x3_rows_avx512<1>(c, h0);
        break;
      case 2:
        conv3x3_rows_avx512<2>(c, h0);
        break;
      case 3:
        conv3x3_rows_avx512<3>(c, h0);
        break;
      default:
        conv3x3_rows_avx512<4>(c, h0);
        break;
    }
}

#endif  // E2E_X86

void conv3x3_scalar(const SparseConv3x3Call& c) {
  for (int64_t o = 0; o < c.out_channels; ++o)
    for (int64_t h = c.row_begin; h < c.row_end; ++h) {
      float* out = c.out + o * c.out_channel_stride + h * c.width;
      std::fill(out, out + c.width, c.bias[o]);
      for (int32_t k = c.kernel_start[o]; k < c.kernel_start[o + 1]; ++k) {
        if (!c.source[k]) continue;
        for (int t = 0; t < 9; ++t) {
          const int64_t ky = t / 3, kx = t % 3, row = h + ky - 1;
          if (row < 0 || row >= c.height) continue;
          const float w = c.weight[9 * static_cast<int64_t>(k) + t];
          const float* src = c.source[k] + row * c.width + kx - 1;
          for (int64_t x = std::max<int64_t>(0, 1 - kx); x < std::min(c.width, c.width + 1 - kx); ++x)
            out[x] += w * src[x];
        }
      }
    }
}

}  // namespace

bool sparse_conv3x3_vectorized(SparseKernel kernel) {
  return resolve_sparse_kernel(kernel) == SparseKernel::Avx512;
}

void sparse_conv3x3(const SparseConv3x3Call& call, SparseKernel kernel) {
#ifdef E2E_X86
  if (resolve_sparse_kernel(kernel) == SparseKernel::Avx512) {
    conv3x3_avx512(call);
    return;
  }
#endif
  conv3x3_scalar(call);
}

SparseKernel resolve_sparse_kernel(SparseKernel requested) {
  if ((requested == SparseKernel::Auto || requested == SparseKernel::Avx512) && cpu_has_avx512())
    return SparseKernel::Avx512;
  if (requested != SparseKernel::Scalar && cpu_has_avx2()) return SparseKernel::Avx2;
  return SparseKernel::Scalar;
}

void sparse_rows(const SparseRowsCall& call, SparseKernel kernel) {
  if (kernel == SparseKernel::Auto) kernel = resolve_sparse_kernel(kernel);
  switch (kernel) {
#ifdef E2E_X86
    case SparseKernel::Avx512:
      rows_avx512(call);
      return;
    case SparseKernel::Avx2:
      rows_avx2(call);
      return;
#endif
    default:
      rows_scalar(call);
  }
}

}  // namespace e2e
