// Dispatch and argument checks of position-sensitive RoI Align.
#include "pytorch_cpp_helper.hpp"

void check_ps_roi_args(const at::Tensor& input, const at::Tensor& rois,
                       int64_t pooled_h, int64_t pooled_w,
                       double spatial_scale, const char* op);

at::Tensor ps_roi_align_forward_cpu(const at::Tensor& input,
                                    const at::Tensor& rois, int64_t pooled_h,
                                    int64_t pooled_w, double spatial_scale,
                                    int64_t sampling_ratio, bool aligned);
at::Tensor ps_roi_align_backward_cpu(const at::Tensor& grad_output,
                                     const at::Tensor& rois, int64_t batch,
                                     int64_t channels, int64_t height,
                                     int64_t width, int64_t pooled_h,
                                     int64_t pooled_w, double spatial_scale,
                                     int64_t sampling_ratio, bool aligned);
#ifdef RFCN_WITH_CUDA
at::Tensor ps_roi_align_forward_cuda(const at::Tensor& input,
                                     const at::Tensor& rois, int64_t pooled_h,
                                     int64_t pooled_w, double spatial_scale,
                                     int64_t sampling_ratio, bool aligned);
at::Tensor ps_roi_align_backward_cuda(const at::Tensor& grad_output,
                                      const at::Tensor& rois, int64_t batch,
                                      int64_t channels, int64_t height,
                                      int64_t width, int64_t pooled_h,
                                      int64_t pooled_w, double spatial_scale,
                                      int64_t sampling_ratio, bool aligned);
#endif

at::Tensor ps_roi_align_forward(const at::Tensor& input,
                                const at::Tensor& rois, int64_t pooled_h,
                                int64_t pooled_w, double spatial_scale,
                                int64_t sampling_ratio, bool aligned) {
  check_ps_roi_args(input, rois, pooled_h, pooled_w, spatial_scale,
                    "ps_roi_align");
  TORCH_CHECK(sampling_ratio >= 0,
              "ps_roi_align: sampling_ratio must be >= 0 (0 = adaptive), got ",
              sampling_ratio);
  if (input.is_cuda()) {
#ifdef RFCN_WITH_CUDA
    return ps_roi_align_forward_cuda(input, rois, pooled_h, pooled_w,
                                     spatial_scale, sampling_ratio, aligned);
#else
    TORCH_CHECK(false, "ps_roi_align: rfcn_mm was built without CUDA; "
                       "rebuild with FORCE_CUDA=1 to run on ",
                input.device());
#endif
  }
  TORCH_CHECK(input.is_cpu(), "ps_roi_align: unsupported device ",
              input.device());
  return ps_roi_align_forward_cpu(input, rois, pooled_h, pooled_w,
                                  spatial_scale, sampling_ratio, aligned);
}

at::Tensor ps_roi_align_backward(const at::Tensor& grad_output,
                                 const at::Tensor& rois, int64_t batch,
                                 int64_t channels, int64_t height,
                                 int64_t width, int64_t pooled_h,
                                 int64_t pooled_w, double spatial_scale,
                                 int64_t sampling_ratio, bool aligned) {
  CHECK_DIM(grad_output, 4);
  TORCH_CHECK(grad_output.size(0) == rois.size(0) &&
                  grad_output.size(1) * pooled_h * pooled_w == channels,
              "ps_roi_align: grad_output shape ", grad_output.sizes(),
              " does not match the forward pass");
  if (grad_output.is_cuda()) {
#ifdef RFCN_WITH_CUDA
    return ps_roi_align_backward_cuda(grad_output, rois, batch, channels,
                                      height, width, pooled_h, pooled_w,
                                      spatial_scale, sampling_ratio, aligned);
#else
    TORCH_CHECK(false, "ps_roi_align: rfcn_mm was built without CUDA");
#endif
  }
  return ps_roi_align_backward_cpu(grad_output, rois, batch, channels, height,
                                   width, pooled_h, pooled_w, spatial_scale,
                                   sampling_ratio, aligned);
}
