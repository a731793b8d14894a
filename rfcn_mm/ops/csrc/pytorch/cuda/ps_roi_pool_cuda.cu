// Launchers of the position-sensitive RoI pooling CUDA kernels.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ps_roi_pool_cuda_kernel.cuh"
#include "launch_utils.cuh"
#include "pytorch_cpp_helper.hpp"

at::Tensor ps_roi_pool_forward_cuda(const at::Tensor& input_,
                                    const at::Tensor& rois_, int64_t pooled_h,
                                    int64_t pooled_w, double spatial_scale,
                                    bool legacy) {
  c10::cuda::CUDAGuard device_guard(input_.device());
  const auto input = input_.contiguous();
  const auto rois = rois_.contiguous();
  const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
  auto output = at::empty({rois.size(0), channels_out, pooled_h, pooled_w},
                          input.options());
  const int64_t n = output.numel();
  if (n == 0) return output;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t batch = input.size(0), height = input.size(2),
                width = input.size(3);
  const int64_t sat_bytes =
      (height + 1) * ps_roi_pool_sat_stride((int)width) * sizeof(double);
  // building a plane's table costs about two passes over it, which pays off
  // once its image has more than a quarter of a plane's pixels in RoIs
  // (H100, 38x63: slower at 300 RoIs, up to 2x faster at 2000)
  const bool many_rois = rois.size(0) * 4 >= batch * height * width;
  if (batch * height * width > 0 && many_rois &&
      rfcn::use_plane_kernel(sat_bytes, batch, rois.size(0))) {
    // every output is written (RoIs naming no image by image 0's blocks)
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
        "ps_roi_pool_forward_plane_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          ps_roi_pool_forward_plane_cuda_kernel<scalar_t, acc_t>
              <<<(unsigned int)(batch * input.size(1)),
                 rfcn::kThreadsPerBlock, sat_bytes, stream>>>(
                  input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                  output.data_ptr<scalar_t>(), (int)batch,
                  (int)rois.size(0), (int)channels_out, (int)height,
                  (int)width, (int)pooled_h, (int)pooled_w,
                  static_cast<acc_t>(spatial_scale), legacy);
        });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return output;
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
      "ps_roi_pool_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_pool_forward_cuda_kernel<scalar_t, acc_t>
            <<<rfcn::num_blocks(n), rfcn::kThreadsPerBlock, 0, stream>>>(
                n, input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                output.data_ptr<scalar_t>(), (int)batch, (int)channels_out,
                (int)height, (int)width, (int)pooled_h, (int)pooled_w,
                static_cast<acc_t>(spatial_scale), legacy);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

at::Tensor ps_roi_pool_backward_cuda(const at::Tensor& grad_output_,
                                     const at::Tensor& rois_, int64_t batch,
                                     int64_t channels, int64_t height,
                                     int64_t width, int64_t pooled_h,
                                     int64_t pooled_w, double spatial_scale,
                                    bool legacy) {
  c10::cuda::CUDAGuard device_guard(grad_output_.device());
  const auto grad_output = grad_output_.contiguous();
  const auto rois = rois_.contiguous();
  const auto acc_type = at::toOpMathType(grad_output.scalar_type());
  const int64_t n = grad_output.numel();
  if (n == 0 || batch * channels * height * width == 0)
    return at::zeros({batch, channels, height, width}, grad_output.options());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t plane_bytes =
      height * ps_roi_pool_plane_stride((int)width) *
      (int64_t)c10::elementSize(acc_type);
  if (rfcn::use_plane_kernel(plane_bytes, batch, rois.size(0))) {
    // every element of the gradient is written: no zero fill
    auto grad = at::empty({batch, channels, height, width},
                          grad_output.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16,
        grad_output.scalar_type(), "ps_roi_pool_backward_plane_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          ps_roi_pool_backward_plane_cuda_kernel<scalar_t, acc_t>
              <<<(unsigned int)(batch * channels), rfcn::kThreadsPerBlock,
                 plane_bytes, stream>>>(
                  grad_output.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                  grad.data_ptr<scalar_t>(), (int)rois.size(0),
                  (int)grad_output.size(1), (int)height, (int)width,
                  (int)pooled_h, (int)pooled_w,
                  static_cast<acc_t>(spatial_scale), legacy);
        });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return grad;
  }
  // difference array with one extra row and column for the bins' far edges
  auto diff = at::zeros({batch, channels, height + 1, width + 1},
                        grad_output.options().dtype(acc_type));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16,
      grad_output.scalar_type(), "ps_roi_pool_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_pool_backward_cuda_kernel<scalar_t, acc_t>
            <<<rfcn::num_blocks(n), rfcn::kThreadsPerBlock, 0, stream>>>(
                n, grad_output.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                diff.data_ptr<acc_t>(), (int)batch,
                (int)grad_output.size(1), (int)height, (int)width,
                (int)pooled_h, (int)pooled_w,
                static_cast<acc_t>(spatial_scale), legacy);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  auto grad = diff.cumsum_(2).cumsum_(3).narrow(2, 0, height).narrow(3, 0,
                                                                       width);
  return grad.to(grad_output.scalar_type()).contiguous();
}
