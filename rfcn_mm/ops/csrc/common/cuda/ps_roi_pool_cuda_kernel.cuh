// CUDA kernels of position-sensitive RoI pooling.
//
// Forward:
// - plane kernel (the usual case): one block per (image, input channel)
//   reads its plane once, coalesced, into a summed-area table in shared
//   memory (double accumulators, so that differences of large prefix sums
//   lose nothing), then answers the bin of every RoI of its image in that
//   channel with four reads, whatever the bin's size.
// - global kernel (planes too large for shared memory, or very many
//   RoIs x images): one thread per pooled output sums its bin directly.
// Backward: instead of one atomic add per pixel of every bin, each bin adds
// its gradient g / area at the four corners of a difference array, whose
// 2-D prefix sum is the gradient: four atomics per bin whatever its size.
// - plane kernel (the usual case): one block per (image, input channel)
//   keeps its plane's difference array in shared memory, takes the bins of
//   every RoI of its image that fall in its channel, integrates the plane
//   and writes its gradient: the whole backward is one launch.
// - global kernel (planes too large for shared memory, or very many
//   RoIs x images): the difference array lives in global memory as
//   (N, C, H + 1, W + 1) and the launcher integrates it with two cumsums.
#ifndef RFCN_PS_ROI_POOL_CUDA_KERNEL_CUH
#define RFCN_PS_ROI_POOL_CUDA_KERNEL_CUH

#include <ATen/cuda/Atomic.cuh>

#include "ps_roi_cuda_utils.cuh"
#include "ps_roi_utils.h"

namespace rfcn {

// Bin (i, j) of an RoI: its pixel rectangle and the share `v` of the bin's
// gradient that each of its pixels receives; false for an empty bin.
template <typename acc_t>
__device__ __forceinline__ bool pool_bin_grad(const acc_t* roi,
                                              acc_t spatial_scale,
                                              int pooled_h, int pooled_w,
                                              int i, int j, int height,
                                              int width, acc_t grad, int* hs,
                                              int* he, int* ws, int* we,
                                              acc_t* v, bool legacy) {
  const auto g = pool_roi_geometry<acc_t>(roi, spatial_scale, pooled_h,
                                          pooled_w, legacy);
  const int area = pool_bin_rect(g, i, j, height, width, hs, he, ws, we);
  if (area <= 0) return false;
  *v = grad / static_cast<acc_t>(area);
  return true;
}

}  // namespace rfcn

template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* __restrict__ input,
    const scalar_t* __restrict__ rois, scalar_t* __restrict__ output,
    const int batch, const int channels_out, const int height,
    const int width, const int pooled_h, const int pooled_w,
    const acc_t spatial_scale, const bool legacy) {
  for (int64_t index = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
       index < nthreads; index += (int64_t)blockDim.x * gridDim.x) {
    const int j = index % pooled_w;
    const int i = (index / pooled_w) % pooled_h;
    const int c = (index / pooled_w / pooled_h) % channels_out;
    const int64_t r = index / pooled_w / pooled_h / channels_out;
    acc_t roi[5];
    rfcn::load_roi(rois, r, roi);
    const int b = rfcn::roi_image(roi, batch);
    if (b < 0) {
      output[index] = scalar_t(0);
      continue;
    }
    const auto g =
        rfcn::pool_roi_geometry<acc_t>(roi, spatial_scale, pooled_h, pooled_w,
                                       legacy);
    int hs, he, ws, we;
    const int area =
        rfcn::pool_bin_rect(g, i, j, height, width, &hs, &he, &ws, &we);
    if (area <= 0) {
      output[index] = scalar_t(0);
      continue;
    }
    const int64_t ch = ((int64_t)c * pooled_h + i) * pooled_w + j;
    const scalar_t* plane =
        input + ((int64_t)b * channels_out * pooled_h * pooled_w + ch) *
                    height * width;
    acc_t sum = 0;
    for (int h = hs; h < he; ++h)
      for (int w = ws; w < we; ++w)
        sum += static_cast<acc_t>(plane[h * width + w]);
    output[index] = static_cast<scalar_t>(sum / static_cast<acc_t>(area));
  }
}

// Row stride (in doubles) of the forward summed-area table: (H + 1) rows of
// W + 1 prefix sums, odd so that threads scanning different rows spread
// over the banks.
__host__ __device__ inline int ps_roi_pool_sat_stride(int width) {
  return (width + 1) | 1;
}

template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_forward_plane_cuda_kernel(
    const scalar_t* __restrict__ input, const scalar_t* __restrict__ rois,
    scalar_t* __restrict__ output, const int batch, const int num_rois,
    const int channels_out, const int height, const int width,
    const int pooled_h, const int pooled_w, const acc_t spatial_scale,
    const bool legacy) {
  extern __shared__ __align__(16) unsigned char pool_sat_smem[];
  // sat[h * stride + w]: sum of the plane's rows < h and columns < w
  double* sat = reinterpret_cast<double*>(pool_sat_smem);
  const int stride = ps_roi_pool_sat_stride(width);
  const int bins = pooled_h * pooled_w;
  const auto p = rfcn::plane_block(channels_out, pooled_h, pooled_w);
  const int n = p.n, ch = p.ch, c = p.c, i = p.i, j = p.j;
  const scalar_t* plane =
      input + ((int64_t)n * channels_out * bins + ch) * height * width;
  for (int e = threadIdx.x; e < stride; e += blockDim.x) sat[e] = 0.0;
  for (int h = threadIdx.x; h < height; h += blockDim.x)
    sat[(h + 1) * stride] = 0.0;
  for (int e = threadIdx.x; e < height * width; e += blockDim.x)
    sat[(e / width + 1) * stride + e % width + 1] =
        static_cast<double>(plane[e]);
  __syncthreads();
  for (int h = 1 + threadIdx.x; h <= height; h += blockDim.x)  // rows
    for (int w = 1; w <= width; ++w)
      sat[h * stride + w] += sat[h * stride + w - 1];
  __syncthreads();
  for (int w = 1 + threadIdx.x; w <= width; w += blockDim.x)  // columns
    for (int h = 1; h <= height; ++h)
      sat[h * stride + w] += sat[(h - 1) * stride + w];
  __syncthreads();
  for (int r = threadIdx.x; r < num_rois; r += blockDim.x) {
    acc_t roi[5];
    rfcn::load_roi(rois, r, roi);
    const int b = rfcn::roi_image(roi, batch);
    // a batch index that names no image pools zeros, written by image 0's
    // blocks; RoIs of other images are their blocks' work
    if (b != n && !(n == 0 && b < 0)) continue;
    scalar_t* out = output + ((int64_t)r * channels_out + c) * bins +
                    i * pooled_w + j;
    int hs, he, ws, we;
    const int area =
        b != n ? 0
               : rfcn::pool_bin_rect(
                     rfcn::pool_roi_geometry<acc_t>(roi, spatial_scale,
                                                    pooled_h, pooled_w,
                                                    legacy),
                     i, j, height, width, &hs, &he, &ws, &we);
    if (area <= 0) {
      *out = scalar_t(0);
      continue;
    }
    const double sum = sat[he * stride + we] - sat[hs * stride + we] -
                       sat[he * stride + ws] + sat[hs * stride + ws];
    *out = static_cast<scalar_t>(static_cast<acc_t>(sum / area));
  }
}

template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_backward_cuda_kernel(
    const int64_t nthreads, const scalar_t* __restrict__ grad_output,
    const scalar_t* __restrict__ rois, acc_t* __restrict__ grad_diff,
    const int batch, const int channels_out, const int height,
    const int width, const int pooled_h, const int pooled_w,
    const acc_t spatial_scale, const bool legacy) {
  const int dh = height + 1, dw = width + 1;
  for (int64_t index = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
       index < nthreads; index += (int64_t)blockDim.x * gridDim.x) {
    const int j = index % pooled_w;
    const int i = (index / pooled_w) % pooled_h;
    const int c = (index / pooled_w / pooled_h) % channels_out;
    const int64_t r = index / pooled_w / pooled_h / channels_out;
    acc_t roi[5];
    rfcn::load_roi(rois, r, roi);
    const int b = rfcn::roi_image(roi, batch);
    if (b < 0) continue;
    int hs, he, ws, we;
    acc_t v;
    if (!rfcn::pool_bin_grad(roi, spatial_scale, pooled_h, pooled_w, i, j,
                             height, width,
                             static_cast<acc_t>(grad_output[index]), &hs, &he,
                             &ws, &we, &v, legacy))
      continue;
    const int64_t ch = ((int64_t)c * pooled_h + i) * pooled_w + j;
    acc_t* plane =
        grad_diff +
        ((int64_t)b * channels_out * pooled_h * pooled_w + ch) * dh * dw;
    gpuAtomicAdd(plane + hs * dw + ws, v);
    gpuAtomicAdd(plane + hs * dw + we, -v);
    gpuAtomicAdd(plane + he * dw + ws, -v);
    gpuAtomicAdd(plane + he * dw + we, v);
  }
}

// Row stride of the shared-memory plane: odd, so that threads scanning
// different rows hit different banks.
__host__ __device__ inline int ps_roi_pool_plane_stride(int width) {
  return width | 1;
}

template <typename scalar_t, typename acc_t>
__global__ void ps_roi_pool_backward_plane_cuda_kernel(
    const scalar_t* __restrict__ grad_output,
    const scalar_t* __restrict__ rois, scalar_t* __restrict__ grad_input,
    const int num_rois, const int channels_out, const int height,
    const int width, const int pooled_h, const int pooled_w,
    const acc_t spatial_scale, const bool legacy) {
  extern __shared__ __align__(16) unsigned char pool_plane_smem[];
  acc_t* diff = reinterpret_cast<acc_t*>(pool_plane_smem);
  const int stride = ps_roi_pool_plane_stride(width);
  const int bins = pooled_h * pooled_w;
  const auto p = rfcn::plane_block(channels_out, pooled_h, pooled_w);
  const int n = p.n, ch = p.ch, c = p.c, i = p.i, j = p.j;
  rfcn::zero_block_shared(diff, height * stride);
  for (int r = threadIdx.x; r < num_rois; r += blockDim.x) {
    acc_t roi[5];
    rfcn::load_roi(rois, r, roi);
    // RoIs of other images, and batch indices that name no image, are
    // skipped (no block has that n)
    if (rfcn::roi_image(roi, n + 1) != n) continue;
    const acc_t grad = static_cast<acc_t>(
        grad_output[((int64_t)r * channels_out + c) * bins + i * pooled_w +
                    j]);
    int hs, he, ws, we;
    acc_t v;
    if (!rfcn::pool_bin_grad(roi, spatial_scale, pooled_h, pooled_w, i, j,
                             height, width, grad, &hs, &he, &ws, &we, &v,
                             legacy))
      continue;
    // corners on the far edge (row H or column W) only affect pixels off
    // the map and are dropped
    gpuAtomicAdd(diff + hs * stride + ws, v);
    if (we < width) gpuAtomicAdd(diff + hs * stride + we, -v);
    if (he < height) {
      gpuAtomicAdd(diff + he * stride + ws, -v);
      if (we < width) gpuAtomicAdd(diff + he * stride + we, v);
    }
  }
  __syncthreads();
  for (int h = threadIdx.x; h < height; h += blockDim.x) {  // rows
    acc_t sum = 0;
    for (int w = 0; w < width; ++w) {
      sum += diff[h * stride + w];
      diff[h * stride + w] = sum;
    }
  }
  __syncthreads();
  scalar_t* out =
      grad_input + ((int64_t)n * channels_out * bins + ch) * height * width;
  for (int w = threadIdx.x; w < width; w += blockDim.x) {  // columns
    acc_t sum = 0;
    for (int h = 0; h < height; ++h) {
      sum += diff[h * stride + w];
      out[h * width + w] = static_cast<scalar_t>(sum);
    }
  }
}

#endif  // RFCN_PS_ROI_POOL_CUDA_KERNEL_CUH
