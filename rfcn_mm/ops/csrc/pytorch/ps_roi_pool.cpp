// Dispatch and argument checks of position-sensitive RoI pooling.
#include <cmath>

#include "pytorch_cpp_helper.hpp"

at::Tensor ps_roi_pool_forward_cpu(const at::Tensor& input,
                                   const at::Tensor& rois, int64_t pooled_h,
                                   int64_t pooled_w, double spatial_scale);
at::Tensor ps_roi_pool_backward_cpu(const at::Tensor& grad_output,
                                    const at::Tensor& rois, int64_t batch,
                                    int64_t channels, int64_t height,
                                    int64_t width, int64_t pooled_h,
                                    int64_t pooled_w, double spatial_scale);
#ifdef RFCN_WITH_CUDA
at::Tensor ps_roi_pool_forward_cuda(const at::Tensor& input,
                                    const at::Tensor& rois, int64_t pooled_h,
                                    int64_t pooled_w, double spatial_scale);
at::Tensor ps_roi_pool_backward_cuda(const at::Tensor& grad_output,
                                     const at::Tensor& rois, int64_t batch,
                                     int64_t channels, int64_t height,
                                     int64_t width, int64_t pooled_h,
                                     int64_t pooled_w, double spatial_scale);
#endif

void check_ps_roi_args(const at::Tensor& input, const at::Tensor& rois,
                       int64_t pooled_h, int64_t pooled_w,
                       double spatial_scale, const char* op) {
  CHECK_DEFINED(input);
  CHECK_DEFINED(rois);
  CHECK_DIM(input, 4);
  CHECK_FLOATING(input);
  TORCH_CHECK(rois.dim() == 2 && rois.size(1) == 5, op,
              ": rois must be shaped (N, 5) as (batch_index, x1, y1, x2, y2),"
              " got shape ",
              rois.sizes());
  TORCH_CHECK(input.device() == rois.device(), op,
              ": input and rois must be on the same device, got ",
              input.device(), " and ", rois.device());
  TORCH_CHECK(input.scalar_type() == rois.scalar_type(), op,
              ": input and rois must have the same dtype, got ",
              input.scalar_type(), " and ", rois.scalar_type());
  TORCH_CHECK(pooled_h > 0 && pooled_w > 0, op,
              ": output_size must be positive, got (", pooled_h, ", ",
              pooled_w, ")");
  TORCH_CHECK(std::isfinite(spatial_scale) && spatial_scale > 0, op,
              ": spatial_scale must be a finite positive number, got ",
              spatial_scale);
  TORCH_CHECK(input.size(1) % (pooled_h * pooled_w) == 0, op,
              ": input channels (", input.size(1),
              ") must be divisible by output_size[0] * output_size[1] (",
              pooled_h * pooled_w, ")");
}

at::Tensor ps_roi_pool_forward(const at::Tensor& input, const at::Tensor& rois,
                               int64_t pooled_h, int64_t pooled_w,
                               double spatial_scale) {
  check_ps_roi_args(input, rois, pooled_h, pooled_w, spatial_scale,
                    "ps_roi_pool");
  if (input.is_cuda()) {
#ifdef RFCN_WITH_CUDA
    return ps_roi_pool_forward_cuda(input, rois, pooled_h, pooled_w,
                                    spatial_scale);
#else
    TORCH_CHECK(false, "ps_roi_pool: rfcn_mm was built without CUDA; rebuild "
                       "with FORCE_CUDA=1 to run on ",
                input.device());
#endif
  }
  TORCH_CHECK(input.is_cpu(), "ps_roi_pool: unsupported device ",
              input.device());
  return ps_roi_pool_forward_cpu(input, rois, pooled_h, pooled_w,
                                 spatial_scale);
}

at::Tensor ps_roi_pool_backward(const at::Tensor& grad_output,
                                const at::Tensor& rois, int64_t batch,
                                int64_t channels, int64_t height,
                                int64_t width, int64_t pooled_h,
                                int64_t pooled_w, double spatial_scale) {
  CHECK_DIM(grad_output, 4);
  TORCH_CHECK(grad_output.size(0) == rois.size(0) &&
                  grad_output.size(1) * pooled_h * pooled_w == channels,
              "ps_roi_pool: grad_output shape ", grad_output.sizes(),
              " does not match the forward pass");
  if (grad_output.is_cuda()) {
#ifdef RFCN_WITH_CUDA
    return ps_roi_pool_backward_cuda(grad_output, rois, batch, channels,
                                     height, width, pooled_h, pooled_w,
                                     spatial_scale);
#else
    TORCH_CHECK(false, "ps_roi_pool: rfcn_mm was built without CUDA");
#endif
  }
  return ps_roi_pool_backward_cpu(grad_output, rois, batch, channels, height,
                                  width, pooled_h, pooled_w, spatial_scale);
}
