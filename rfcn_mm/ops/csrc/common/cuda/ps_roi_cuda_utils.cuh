// Device helpers shared by the PS RoI pooling and align CUDA kernels.
#ifndef RFCN_PS_ROI_CUDA_UTILS_CUH
#define RFCN_PS_ROI_CUDA_UTILS_CUH

#include <cstdint>

namespace rfcn {

// RoI r as (batch, x1, y1, x2, y2) in the accumulation type.
template <typename scalar_t, typename acc_t>
__device__ __forceinline__ void load_roi(const scalar_t* rois, int64_t r,
                                         acc_t* roi) {
#pragma unroll
  for (int k = 0; k < 5; ++k) roi[k] = static_cast<acc_t>(rois[r * 5 + k]);
}

// What a backward "plane" block (one per image and input channel) works on:
// image n, input channel ch, which is class c's bin (i, j).
struct PlaneBlock {
  int n, ch, c, i, j;
};

__device__ __forceinline__ PlaneBlock plane_block(int channels_out,
                                                  int pooled_h, int pooled_w) {
  const int bins = pooled_h * pooled_w;
  const int channels = channels_out * bins;
  PlaneBlock p;
  p.n = blockIdx.x / channels;
  p.ch = blockIdx.x % channels;
  p.c = p.ch / bins;
  p.i = (p.ch / pooled_w) % pooled_h;
  p.j = p.ch % pooled_w;
  return p;
}

// Zero `count` shared-memory values with the whole block, then sync.
template <typename acc_t>
__device__ __forceinline__ void zero_block_shared(acc_t* data, int count) {
  for (int e = threadIdx.x; e < count; e += blockDim.x) data[e] = acc_t(0);
  __syncthreads();
}

}  // namespace rfcn

#endif  // RFCN_PS_ROI_CUDA_UTILS_CUH
