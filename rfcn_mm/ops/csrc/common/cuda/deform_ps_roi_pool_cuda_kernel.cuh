// CUDA kernels of deformable position-sensitive RoI pooling: one thread
// per pooled output, forward and backward; the backward adds to the input
// gradient and to the offsets' gradient with atomics (an offset cell is
// shared by the output channels of its group and the bins of its cell).
#ifndef RFCN_DEFORM_PS_ROI_POOL_CUDA_KERNEL_CUH
#define RFCN_DEFORM_PS_ROI_POOL_CUDA_KERNEL_CUH

#include <ATen/cuda/Atomic.cuh>

#include <limits>

#include "deform_ps_roi_utils.h"
#include "ps_roi_cuda_utils.cuh"

template <typename scalar_t, typename acc_t>
__global__ void deform_ps_roi_pool_forward_cuda_kernel(
    const int64_t nthreads, const scalar_t* __restrict__ input,
    const scalar_t* __restrict__ rois, const scalar_t* __restrict__ offset,
    scalar_t* __restrict__ output, const int batch, const int channels_out,
    const int height, const int width, const int pooled_h,
    const int pooled_w, const int part_h, const int part_w,
    const int samples, const int groups, const acc_t spatial_scale,
    const acc_t trans_std, const bool legacy) {
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
    const auto g = rfcn::deform_roi_geometry<acc_t>(
        roi, spatial_scale, pooled_h, pooled_w, samples, legacy);
    acc_t hs, ws;
    int64_t oi;
    rfcn::deform_bin_start(g, offset, r, c, i, j, channels_out, groups,
                           pooled_h, pooled_w, part_h, part_w, trans_std,
                           &hs, &ws, &oi);
    if (!rfcn::finite_start(hs, ws)) {
      output[index] =
          static_cast<scalar_t>(std::numeric_limits<acc_t>::quiet_NaN());
      continue;
    }
    const int64_t ch = ((int64_t)c * pooled_h + i) * pooled_w + j;
    const scalar_t* plane =
        input + ((int64_t)b * channels_out * pooled_h * pooled_w + ch) *
                    height * width;
    acc_t sum = 0;
    const int count = rfcn::deform_for_each_sample(
        g, hs, ws, samples, legacy, height, width,
        [&](const rfcn::BilinearSample<acc_t>& s, const acc_t*,
            const acc_t*) { sum += rfcn::interpolate(plane, s); });
    output[index] =
        static_cast<scalar_t>(count > 0 ? sum / static_cast<acc_t>(count)
                                        : acc_t(0));
  }
}

template <typename scalar_t, typename acc_t>
__global__ void deform_ps_roi_pool_backward_cuda_kernel(
    const int64_t nthreads, const scalar_t* __restrict__ grad_output,
    const scalar_t* __restrict__ input, const scalar_t* __restrict__ rois,
    const scalar_t* __restrict__ offset, acc_t* __restrict__ grad_input,
    acc_t* __restrict__ grad_offset, const int batch, const int channels_out,
    const int height, const int width, const int pooled_h,
    const int pooled_w, const int part_h, const int part_w,
    const int samples, const int groups, const acc_t spatial_scale,
    const acc_t trans_std, const bool legacy) {
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
    const auto g = rfcn::deform_roi_geometry<acc_t>(
        roi, spatial_scale, pooled_h, pooled_w, samples, legacy);
    acc_t hs, ws;
    int64_t oi;
    rfcn::deform_bin_start(g, offset, r, c, i, j, channels_out, groups,
                           pooled_h, pooled_w, part_h, part_w, trans_std,
                           &hs, &ws, &oi);
    if (!rfcn::finite_start(hs, ws)) continue;
    const int64_t ch = ((int64_t)c * pooled_h + i) * pooled_w + j;
    const int64_t plane_at =
        ((int64_t)b * channels_out * pooled_h * pooled_w + ch) * height *
        width;
    // the count first: legacy mode averages the kept samples only
    const int count = rfcn::deform_sample_count(g, hs, ws, samples, legacy,
                                                height, width);
    if (count == 0) continue;
    const acc_t go =
        static_cast<acc_t>(grad_output[index]) / static_cast<acc_t>(count);
    acc_t gx = 0, gy = 0;
    rfcn::deform_for_each_sample(
        g, hs, ws, samples, legacy, height, width,
        [&](const rfcn::BilinearSample<acc_t>& s, const acc_t* dwdy,
            const acc_t* dwdx) {
          for (int k = 0; k < 4; ++k) {
            gpuAtomicAdd(grad_input + plane_at + s.offset[k],
                         s.weight[k] * go);
            if (oi >= 0) {
              const acc_t v =
                  static_cast<acc_t>(input[plane_at + s.offset[k]]);
              gx += dwdx[k] * v;
              gy += dwdy[k] * v;
            }
          }
        });
    if (oi >= 0) {
      const int64_t cell = (int64_t)part_h * part_w;
      gpuAtomicAdd(grad_offset + oi, gx * go * trans_std * g.roi_w);
      gpuAtomicAdd(grad_offset + oi + cell, gy * go * trans_std * g.roi_h);
    }
  }
}

#endif  // RFCN_DEFORM_PS_ROI_POOL_CUDA_KERNEL_CUH
