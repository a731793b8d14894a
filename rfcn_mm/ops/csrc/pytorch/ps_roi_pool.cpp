// Schemas, argument checks and per-device registration of
// position-sensitive RoI pooling (rfcn_mm::ps_roi_pool and its backward).
#include <torch/library.h>

#include <cmath>

#include "pytorch_cpp_helper.hpp"

at::Tensor ps_roi_pool_forward_cpu(const at::Tensor& input,
                                   const at::Tensor& rois, int64_t pooled_h,
                                   int64_t pooled_w, double spatial_scale,
                                   bool legacy);
at::Tensor ps_roi_pool_backward_cpu(const at::Tensor& grad_output,
                                    const at::Tensor& rois, int64_t batch,
                                    int64_t channels, int64_t height,
                                    int64_t width, int64_t pooled_h,
                                    int64_t pooled_w, double spatial_scale,
                                    bool legacy);
#ifdef RFCN_WITH_CUDA
at::Tensor ps_roi_pool_forward_cuda(const at::Tensor& input,
                                    const at::Tensor& rois, int64_t pooled_h,
                                    int64_t pooled_w, double spatial_scale,
                                    bool legacy);
at::Tensor ps_roi_pool_backward_cuda(const at::Tensor& grad_output,
                                     const at::Tensor& rois, int64_t batch,
                                     int64_t channels, int64_t height,
                                     int64_t width, int64_t pooled_h,
                                     int64_t pooled_w, double spatial_scale,
                                     bool legacy);
#endif

// The messages are those of rfcn_mm/ops/_ext_loader.py (check_op_args),
// which the fake kernels raise too.
void check_ps_roi_args(const at::Tensor& input, const at::Tensor& rois,
                       int64_t pooled_h, int64_t pooled_w,
                       double spatial_scale, const char* op) {
  TORCH_CHECK_VALUE(input.dim() == 4, op,
                    ": input must be a 4-D tensor (N, C, H, W), got ",
                    input.dim(), "-D with shape ", input.sizes());
  TORCH_CHECK_TYPE(at::isFloatingType(input.scalar_type()), op,
                   ": input must be a floating point tensor, got ",
                   input.scalar_type());
  TORCH_CHECK_VALUE(rois.dim() == 2 && rois.size(1) == 5, op,
                    ": rois must be shaped (N, 5) as (batch_index, x1, y1, "
                    "x2, y2), got shape ",
                    rois.sizes());
  TORCH_CHECK_VALUE(input.device() == rois.device(), op,
                    ": input and rois must be on the same device, got ",
                    input.device(), " and ", rois.device());
  TORCH_CHECK_TYPE(input.scalar_type() == rois.scalar_type(), op,
                   ": input and rois must have the same dtype, got ",
                   input.scalar_type(), " and ", rois.scalar_type());
  TORCH_CHECK_VALUE(pooled_h > 0 && pooled_w > 0, op,
                    ": output_size must be positive, got (", pooled_h, ", ",
                    pooled_w, ")");
  TORCH_CHECK_VALUE(std::isfinite(spatial_scale) && spatial_scale > 0, op,
                    ": spatial_scale must be a finite positive number, got ",
                    spatial_scale);
}

void check_ps_roi_channels(const at::Tensor& input, int64_t pooled_h,
                           int64_t pooled_w, const char* op) {
  TORCH_CHECK_VALUE(input.size(1) % (pooled_h * pooled_w) == 0, op,
                    ": input channels (", input.size(1),
                    ") must be divisible by output_size[0] * output_size[1] "
                    "(",
                    pooled_h * pooled_w, ")");
}

void check_ps_roi_grad(const at::Tensor& grad_output, const at::Tensor& rois,
                       int64_t channels, int64_t pooled_h, int64_t pooled_w,
                       const char* op) {
  TORCH_CHECK_VALUE(
      grad_output.dim() == 4 && grad_output.size(0) == rois.size(0) &&
          grad_output.size(1) * pooled_h * pooled_w == channels &&
          grad_output.size(2) == pooled_h && grad_output.size(3) == pooled_w,
      op, ": grad_output shape ", grad_output.sizes(),
      " does not match the forward pass");
}

namespace {

template <decltype(ps_roi_pool_forward_cpu)* kernel>
at::Tensor ps_roi_pool_forward(const at::Tensor& input, const at::Tensor& rois,
                               int64_t pooled_h, int64_t pooled_w,
                               double spatial_scale, bool legacy) {
  check_ps_roi_args(input, rois, pooled_h, pooled_w, spatial_scale,
                    "ps_roi_pool");
  check_ps_roi_channels(input, pooled_h, pooled_w, "ps_roi_pool");
  return kernel(input, rois, pooled_h, pooled_w, spatial_scale, legacy);
}

template <decltype(ps_roi_pool_backward_cpu)* kernel>
at::Tensor ps_roi_pool_backward(const at::Tensor& grad_output,
                                const at::Tensor& rois, int64_t batch,
                                int64_t channels, int64_t height,
                                int64_t width, int64_t pooled_h,
                                int64_t pooled_w, double spatial_scale,
                                bool legacy) {
  check_ps_roi_grad(grad_output, rois, channels, pooled_h, pooled_w,
                    "ps_roi_pool");
  return kernel(grad_output, rois, batch, channels, height, width, pooled_h,
                pooled_w, spatial_scale, legacy);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rfcn_mm, m) {
  m.def(
      "ps_roi_pool(Tensor input, Tensor rois, int pooled_h, int pooled_w, "
      "float spatial_scale, bool legacy=False) -> Tensor");
  m.def(
      "_ps_roi_pool_backward(Tensor grad_output, Tensor rois, int batch, "
      "int channels, int height, int width, int pooled_h, int pooled_w, "
      "float spatial_scale, bool legacy=False) -> Tensor");
}

TORCH_LIBRARY_IMPL(rfcn_mm, CPU, m) {
  m.impl("ps_roi_pool", &ps_roi_pool_forward<ps_roi_pool_forward_cpu>);
  m.impl("_ps_roi_pool_backward",
         &ps_roi_pool_backward<ps_roi_pool_backward_cpu>);
}

#ifdef RFCN_WITH_CUDA
TORCH_LIBRARY_IMPL(rfcn_mm, CUDA, m) {
  m.impl("ps_roi_pool", &ps_roi_pool_forward<ps_roi_pool_forward_cuda>);
  m.impl("_ps_roi_pool_backward",
         &ps_roi_pool_backward<ps_roi_pool_backward_cuda>);
}
#endif
