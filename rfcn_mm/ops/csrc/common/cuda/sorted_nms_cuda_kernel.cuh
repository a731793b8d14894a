// CUDA kernels of sorted_nms: greedy NMS of boxes already in descending
// score order, batched over images, with at most max_num kept per image.
// The overlap mask is built in 64 x 64 tiles (one bit per pair); one block
// per image then walks it word by word and stops as soon as max_num boxes
// are kept.
#ifndef RFCN_SORTED_NMS_CUDA_KERNEL_CUH
#define RFCN_SORTED_NMS_CUDA_KERNEL_CUH

#include <cstdint>

#include "nms_utils.h"

namespace rfcn {
constexpr int kNmsTile = 64;  // boxes per mask word
}  // namespace rfcn

// mask[n][i][w] bit b: box i of image n overlaps box w * 64 + b (> i) by
// more than the threshold. Only rows of valid boxes and words at or right
// of the row's own word are written; the gather reads nothing else.
__global__ void sorted_nms_mask_cuda_kernel(
    const float* __restrict__ boxes, const bool* __restrict__ valid,
    unsigned long long* __restrict__ mask, const int num_boxes,
    const int col_blocks, const float iou_threshold) {
  const int col = blockIdx.x, row = blockIdx.y, n = blockIdx.z;
  if (col < row) return;
  const int tid = threadIdx.x;
  const float* img_boxes = boxes + (int64_t)n * num_boxes * 4;
  const bool* img_valid = valid + (int64_t)n * num_boxes;
  const int row_size = min(num_boxes - row * rfcn::kNmsTile, rfcn::kNmsTile);
  const int col_size = min(num_boxes - col * rfcn::kNmsTile, rfcn::kNmsTile);
  __shared__ float tile[rfcn::kNmsTile * 4];
  if (tid < col_size) {
    for (int k = 0; k < 4; ++k)
      tile[tid * 4 + k] = img_boxes[(col * rfcn::kNmsTile + tid) * 4 + k];
  }
  __syncthreads();
  const int i = row * rfcn::kNmsTile + tid;
  if (tid >= row_size || !img_valid[i]) return;
  float box[4];
  for (int k = 0; k < 4; ++k) box[k] = img_boxes[i * 4 + k];
  unsigned long long bits = 0;
  for (int b = col == row ? tid + 1 : 0; b < col_size; ++b) {
    if (rfcn::iou_above(box, tile + b * 4, iou_threshold)) bits |= 1ULL << b;
  }
  mask[((int64_t)n * num_boxes + i) * col_blocks + col] = bits;
}

// One block per image (at least kNmsTile threads), one 64-box word at a
// time. removed[w] (shared) holds the boxes of word w that are invalid or
// suppressed by a kept box of an earlier word. For word w the diagonal
// words mask[i][w] of its boxes are loaded at once, every thread runs the
// greedy pass over the word on them (the same `kept` in every thread),
// and each thread then ors the rows of the word's kept boxes into its own
// later words of removed, issuing kBatch independent loads before using
// any. The walk so costs a few memory latencies per word, not per kept
// box (2000 proposals out of 6000 boxes: 94 words, 2000 kept).
__global__ void sorted_nms_gather_cuda_kernel(
    const unsigned long long* __restrict__ mask,
    const bool* __restrict__ valid, int64_t* __restrict__ keep,
    const int num_boxes, const int col_blocks, const int max_num) {
  constexpr int kBatch = 8;
  extern __shared__ unsigned long long removed[];
  __shared__ unsigned long long diag[rfcn::kNmsTile];
  const int n = blockIdx.x, tid = threadIdx.x;
  const unsigned long long* img_mask =
      mask + (int64_t)n * num_boxes * col_blocks;
  const bool* img_valid = valid + (int64_t)n * num_boxes;
  int64_t* out = keep + (int64_t)n * max_num;
  for (int w = tid; w < col_blocks; w += blockDim.x) {
    unsigned long long bits = 0;
    for (int b = 0; b < rfcn::kNmsTile; ++b) {
      const int i = w * rfcn::kNmsTile + b;
      if (i >= num_boxes || !img_valid[i]) bits |= 1ULL << b;
    }
    removed[w] = bits;
  }
  for (int k = tid; k < max_num; k += blockDim.x) out[k] = -1;
  int count = 0;  // the same in every thread
  for (int w = 0; w < col_blocks && count < max_num; ++w) {
    const int base = w * rfcn::kNmsTile;
    __syncthreads();  // the last word's reads of diag and ors are done
    if (tid < rfcn::kNmsTile) {
      // the mask kernel writes no row for an invalid box
      const int i = base + tid;
      diag[tid] = i < num_boxes && img_valid[i]
                      ? img_mask[(int64_t)i * col_blocks + w]
                      : 0ULL;
    }
    __syncthreads();
    unsigned long long live = ~removed[w], kept = 0;
    while (live != 0 && count < max_num) {
      const int b = __ffsll(static_cast<long long>(live)) - 1;
      if (tid == 0) out[count] = base + b;
      ++count;
      kept |= 1ULL << b;
      live &= ~diag[b] & ~(1ULL << b);
    }
    if (count == max_num) break;  // in every thread at once
    for (int j = w + 1 + tid; kept != 0 && j < col_blocks; j += blockDim.x) {
      unsigned long long acc = 0;
      for (unsigned long long rest = kept; rest != 0;) {
        unsigned long long row[kBatch];
#pragma unroll
        for (int u = 0; u < kBatch; ++u) {
          const int b = __ffsll(static_cast<long long>(rest)) - 1;  // -1: none
          row[u] = b < 0 ? 0ULL
                         : img_mask[(int64_t)(base + b) * col_blocks + j];
          rest &= rest - 1;
        }
#pragma unroll
        for (int u = 0; u < kBatch; ++u) acc |= row[u];
      }
      removed[j] |= acc;
    }
  }
}

#endif  // RFCN_SORTED_NMS_CUDA_KERNEL_CUH
