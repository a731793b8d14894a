// Launchers of the deformable position-sensitive RoI pooling CUDA kernels.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "deform_ps_roi_pool_cuda_kernel.cuh"
#include "launch_utils.cuh"
#include "pytorch_cpp_helper.hpp"

at::Tensor deform_ps_roi_pool_forward_cuda(
    const at::Tensor& input_, const at::Tensor& rois_,
    const at::Tensor& offset_, int64_t pooled_h, int64_t pooled_w,
    double spatial_scale, int64_t part_h, int64_t part_w,
    int64_t sample_per_part, double trans_std, bool legacy) {
  c10::cuda::CUDAGuard device_guard(input_.device());
  const auto input = input_.contiguous();
  const auto rois = rois_.contiguous();
  const bool with_offset = offset_.numel() > 0;
  const auto offset = offset_.contiguous();
  const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
  auto output = at::empty({rois.size(0), channels_out, pooled_h, pooled_w},
                          input.options());
  const int64_t n = output.numel();
  if (n == 0) return output;
  const int groups = with_offset ? (int)(offset.size(1) / 2) : 1;
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
      "deform_ps_roi_pool_forward_cuda", [&] {
        using acc_t = at::opmath_type<scalar_t>;
        deform_ps_roi_pool_forward_cuda_kernel<scalar_t, acc_t>
            <<<rfcn::num_blocks(n), rfcn::kThreadsPerBlock, 0, stream>>>(
                n, input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                with_offset ? offset.data_ptr<scalar_t>() : nullptr,
                output.data_ptr<scalar_t>(), (int)input.size(0),
                (int)channels_out, (int)input.size(2), (int)input.size(3),
                (int)pooled_h, (int)pooled_w, (int)part_h, (int)part_w,
                (int)sample_per_part, groups,
                static_cast<acc_t>(spatial_scale),
                static_cast<acc_t>(trans_std), legacy);
      });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return output;
}

std::tuple<at::Tensor, at::Tensor> deform_ps_roi_pool_backward_cuda(
    const at::Tensor& grad_output_, const at::Tensor& input_,
    const at::Tensor& rois_, const at::Tensor& offset_, int64_t pooled_h,
    int64_t pooled_w, double spatial_scale, int64_t part_h, int64_t part_w,
    int64_t sample_per_part, double trans_std, bool legacy) {
  c10::cuda::CUDAGuard device_guard(input_.device());
  const auto grad_output = grad_output_.contiguous();
  const auto input = input_.contiguous();
  const auto rois = rois_.contiguous();
  const bool with_offset = offset_.numel() > 0;
  const auto offset = offset_.contiguous();
  const auto acc_type = at::toOpMathType(input.scalar_type());
  auto grad_input = at::zeros(input.sizes(), input.options().dtype(acc_type));
  auto grad_offset =
      at::zeros(offset.sizes(), offset.options().dtype(acc_type));
  const int64_t n = grad_output.numel();
  if (n > 0 && input.numel() > 0) {
    const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
    const int groups = with_offset ? (int)(offset.size(1) / 2) : 1;
    cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::ScalarType::Half, at::ScalarType::BFloat16, input.scalar_type(),
        "deform_ps_roi_pool_backward_cuda", [&] {
          using acc_t = at::opmath_type<scalar_t>;
          deform_ps_roi_pool_backward_cuda_kernel<scalar_t, acc_t>
              <<<rfcn::num_blocks(n), rfcn::kThreadsPerBlock, 0, stream>>>(
                  n, grad_output.data_ptr<scalar_t>(),
                  input.data_ptr<scalar_t>(), rois.data_ptr<scalar_t>(),
                  with_offset ? offset.data_ptr<scalar_t>() : nullptr,
                  grad_input.data_ptr<acc_t>(),
                  with_offset ? grad_offset.data_ptr<acc_t>() : nullptr,
                  (int)input.size(0), (int)channels_out, (int)input.size(2),
                  (int)input.size(3), (int)pooled_h, (int)pooled_w,
                  (int)part_h, (int)part_w, (int)sample_per_part, groups,
                  static_cast<acc_t>(spatial_scale),
                  static_cast<acc_t>(trans_std), legacy);
        });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return std::make_tuple(grad_input.to(input.scalar_type()),
                         grad_offset.to(offset.scalar_type()));
}
