// CUDA kernels of position-sensitive RoI Align: one thread per pooled
// output; the backward pass scatters each sample's four bilinear weights,
// into a shared-memory plane per (image, input channel) block when it fits
// (one launch, no zero fill, no global atomics), else into global memory.
#ifndef RFCN_PS_ROI_ALIGN_CUDA_KERNEL_CUH
#define RFCN_PS_ROI_ALIGN_CUDA_KERNEL_CUH

#include <ATen/cuda/Atomic.cuh>

#include "ps_roi_cuda_utils.cuh"
#include "ps_roi_utils.h"

namespace rfcn {

// Scatter gradient v of bin (i, j) to the four bilinear neighbours of each
// of its samples in `plane` (global or shared memory).
template <typename acc_t>
__device__ __forceinline__ void align_scatter_bin(acc_t* plane, int height,
                                                  int width,
                                                  const AlignRoI<acc_t>& g,
                                                  int i, int j, acc_t v) {
  for_each_bin_sample(g, i, j, height, width,
                      [&](const BilinearSample<acc_t>& s) {
                        for (int k = 0; k < 4; ++k)
                          gpuAtomicAdd(plane + s.offset[k], v * s.weight[k]);
                      });
}

}  // namespace rfcn

template <typename scalar_t, typename acc_t>
__global__ void ps_roi_align_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* __restrict__ input,
    const scalar_t* __restrict__ rois, scalar_t* __restrict__ output,
    const int batch, const int channels_out, const int height,
    const int width, const int pooled_h, const int pooled_w,
    const acc_t spatial_scale, const int sampling_ratio, const bool aligned) {
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
    const auto g = rfcn::align_roi_geometry<acc_t>(
        roi, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned);
    const int64_t ch = ((int64_t)c * pooled_h + i) * pooled_w + j;
    const scalar_t* plane =
        input + ((int64_t)b * channels_out * pooled_h * pooled_w + ch) *
                    height * width;
    acc_t sum = 0;
    rfcn::for_each_bin_sample(
        g, i, j, height, width,
        [&](const rfcn::BilinearSample<acc_t>& s) {
          sum += rfcn::interpolate(plane, s);
        });
    output[index] =
        static_cast<scalar_t>(sum / rfcn::align_sample_count(g));
  }
}

template <typename scalar_t, typename acc_t>
__global__ void ps_roi_align_backward_cuda_kernel(
    const int64_t nthreads, const scalar_t* __restrict__ grad_output,
    const scalar_t* __restrict__ rois, acc_t* __restrict__ grad_input,
    const int batch, const int channels_out, const int height,
    const int width, const int pooled_h, const int pooled_w,
    const acc_t spatial_scale, const int sampling_ratio, const bool aligned) {
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
    const auto g = rfcn::align_roi_geometry<acc_t>(
        roi, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned);
    const int64_t ch = ((int64_t)c * pooled_h + i) * pooled_w + j;
    acc_t* plane =
        grad_input + ((int64_t)b * channels_out * pooled_h * pooled_w + ch) *
                         height * width;
    const acc_t v = static_cast<acc_t>(grad_output[index]) /
                    rfcn::align_sample_count(g);
    rfcn::align_scatter_bin(plane, height, width, g, i, j, v);
  }
}

template <typename scalar_t, typename acc_t>
__global__ void ps_roi_align_backward_plane_cuda_kernel(
    const scalar_t* __restrict__ grad_output,
    const scalar_t* __restrict__ rois, scalar_t* __restrict__ grad_input,
    const int num_rois, const int channels_out, const int height,
    const int width, const int pooled_h, const int pooled_w,
    const acc_t spatial_scale, const int sampling_ratio, const bool aligned) {
  extern __shared__ __align__(16) unsigned char align_plane_smem[];
  acc_t* plane = reinterpret_cast<acc_t*>(align_plane_smem);
  const int bins = pooled_h * pooled_w;
  const auto p = rfcn::plane_block(channels_out, pooled_h, pooled_w);
  const int n = p.n, ch = p.ch, c = p.c, i = p.i, j = p.j;
  rfcn::zero_block_shared(plane, height * width);
  for (int r = threadIdx.x; r < num_rois; r += blockDim.x) {
    acc_t roi[5];
    rfcn::load_roi(rois, r, roi);
    // other (or no) image
    if (rfcn::roi_image(roi, n + 1) != n) continue;
    const auto g = rfcn::align_roi_geometry<acc_t>(
        roi, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned);
    const acc_t v =
        static_cast<acc_t>(
            grad_output[((int64_t)r * channels_out + c) * bins + i * pooled_w +
                        j]) /
        rfcn::align_sample_count(g);
    rfcn::align_scatter_bin(plane, height, width, g, i, j, v);
  }
  __syncthreads();
  scalar_t* out =
      grad_input + ((int64_t)n * channels_out * bins + ch) * height * width;
  for (int e = threadIdx.x; e < height * width; e += blockDim.x)
    out[e] = static_cast<scalar_t>(plane[e]);
}

#endif  // RFCN_PS_ROI_ALIGN_CUDA_KERNEL_CUH
