// Launchers of the position-sensitive RoI Align CUDA kernels.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "ps_roi_align_cuda_kernel.cuh"
#include "launch_utils.cuh"
#include "pytorch_cpp_helper.hpp"

at::Tensor ps_roi_align_forward_cuda(const at::Tensor& input_,
                                     const at::Tensor& rois_, int64_t pooled_h,
                                     int64_t pooled_w, double spatial_scale,
                                     int64_t sampling_ratio, bool aligned) {
  c10::cuda::CUDAGuard device_guard(input_.device());
  const auto input = input_.contiguous();
  const auto rois = rois_.contiguous();
  const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
  auto output = at::empty({rois.size(0), channels_out, pooled_h, pooled_w},
                          input.options());
  const int64_t n = output.numel();
  if (n == 0) return output;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
      "ps_roi_align_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_align_forward_cuda_kernel<scalar_t, acc_t>
            <<<rfcn::num_blocks(n), rfcn::kThreadsPerBlock, 0, stream>>>(
                n, input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                output.data_ptr<scalar_t>(), (int)input.size(0),
                (int)channels_out, (int)input.size(2), (int)input.size(3),
                (int)pooled_h, (int)pooled_w,
                static_cast<acc_t>(spatial_scale), (int)sampling_ratio,
                aligned);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

at::Tensor ps_roi_align_backward_cuda(const at::Tensor& grad_output_,
                                      const at::Tensor& rois_, int64_t batch,
                                      int64_t channels, int64_t height,
                                      int64_t width, int64_t pooled_h,
                                      int64_t pooled_w, double spatial_scale,
                                      int64_t sampling_ratio, bool aligned) {
  c10::cuda::CUDAGuard device_guard(grad_output_.device());
  const auto grad_output = grad_output_.contiguous();
  const auto rois = rois_.contiguous();
  const auto acc_type = at::toOpMathType(grad_output.scalar_type());
  const int64_t n = grad_output.numel();
  if (n == 0 || batch * channels * height * width == 0)
    return at::zeros({batch, channels, height, width}, grad_output.options());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t plane_bytes =
      height * width * (int64_t)c10::elementSize(acc_type);
  if (rfcn::use_plane_kernel(plane_bytes, batch, rois.size(0))) {
    // every element of the gradient is written: no zero fill
    auto grad = at::empty({batch, channels, height, width},
                          grad_output.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16,
        grad_output.scalar_type(), "ps_roi_align_backward_plane_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          ps_roi_align_backward_plane_cuda_kernel<scalar_t, acc_t>
              <<<(unsigned int)(batch * channels), rfcn::kThreadsPerBlock,
                 plane_bytes, stream>>>(
                  grad_output.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                  grad.data_ptr<scalar_t>(), (int)rois.size(0),
                  (int)grad_output.size(1), (int)height, (int)width,
                  (int)pooled_h, (int)pooled_w,
                  static_cast<acc_t>(spatial_scale), (int)sampling_ratio,
                  aligned);
        });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return grad;
  }
  auto grad_input = at::zeros({batch, channels, height, width},
                              grad_output.options().dtype(acc_type));
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16,
      grad_output.scalar_type(), "ps_roi_align_backward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        ps_roi_align_backward_cuda_kernel<scalar_t, acc_t>
            <<<rfcn::num_blocks(n), rfcn::kThreadsPerBlock, 0, stream>>>(
                n, grad_output.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                grad_input.data_ptr<acc_t>(), (int)batch,
                (int)grad_output.size(1), (int)height, (int)width,
                (int)pooled_h, (int)pooled_w,
                static_cast<acc_t>(spatial_scale), (int)sampling_ratio,
                aligned);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return grad_input.to(grad_output.scalar_type());
}
