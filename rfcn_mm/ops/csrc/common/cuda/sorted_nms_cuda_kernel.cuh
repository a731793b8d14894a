// CUDA kernels of sorted_nms: greedy NMS of boxes already in descending
// score order, batched over images, with at most max_num kept per image.
// The overlap mask is built in 64 x 64 tiles (one bit per pair); one block
// per image then walks it word by word and stops as soon as max_num boxes
// are kept, so its cost follows the kept boxes, not all of them.
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

// One block per image. removed[w] (shared) holds the boxes of word w that
// are invalid or suppressed by a kept box of an earlier word; within a
// word every thread follows the same register copy `live`, and the kept
// box's row is or-ed into the words to its right, so one barrier per word
// suffices.
__global__ void sorted_nms_gather_cuda_kernel(
    const unsigned long long* __restrict__ mask,
    const bool* __restrict__ valid, int64_t* __restrict__ keep,
    const int num_boxes, const int col_blocks, const int max_num) {
  extern __shared__ unsigned long long removed[];
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
    __syncthreads();  // or-s into removed[w] by earlier words are done
    unsigned long long live = ~removed[w];
    while (live != 0 && count < max_num) {
      const int b = __ffsll(static_cast<long long>(live)) - 1;
      const int i = w * rfcn::kNmsTile + b;
      if (tid == 0) out[count] = i;
      ++count;
      const unsigned long long* row = img_mask + (int64_t)i * col_blocks;
      live &= ~row[w] & ~(1ULL << b);
      for (int j = w + 1 + tid; j < col_blocks; j += blockDim.x)
        removed[j] |= row[j];
    }
  }
}

#endif  // RFCN_SORTED_NMS_CUDA_KERNEL_CUH
