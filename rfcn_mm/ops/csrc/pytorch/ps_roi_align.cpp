// Schemas, argument checks and per-device registration of
// position-sensitive RoI Align (rfcn_mm::ps_roi_align and its backward).
#include <torch/library.h>

#include "pytorch_cpp_helper.hpp"

void check_ps_roi_args(const at::Tensor& input, const at::Tensor& rois,
                       int64_t pooled_h, int64_t pooled_w,
                       double spatial_scale, const char* op);
void check_ps_roi_channels(const at::Tensor& input, int64_t pooled_h,
                           int64_t pooled_w, const char* op);
void check_ps_roi_grad(const at::Tensor& grad_output, const at::Tensor& rois,
                       int64_t channels, int64_t pooled_h, int64_t pooled_w,
                       const char* op);

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

namespace {

template <decltype(ps_roi_align_forward_cpu)* kernel>
at::Tensor ps_roi_align_forward(const at::Tensor& input,
                                const at::Tensor& rois, int64_t pooled_h,
                                int64_t pooled_w, double spatial_scale,
                                int64_t sampling_ratio, bool aligned) {
  check_ps_roi_args(input, rois, pooled_h, pooled_w, spatial_scale,
                    "ps_roi_align");
  TORCH_CHECK_VALUE(
      sampling_ratio >= 0,
      "ps_roi_align: sampling_ratio must be >= 0 (0 = adaptive), got ",
      sampling_ratio);
  TORCH_CHECK_VALUE(sampling_ratio <= kMaxSamples,
                    "ps_roi_align: sampling_ratio must be at most ",
                    kMaxSamples, " (", kMaxSamples, " x ", kMaxSamples,
                    " samples per bin), got ", sampling_ratio);
  check_ps_roi_channels(input, pooled_h, pooled_w, "ps_roi_align");
  return kernel(input, rois, pooled_h, pooled_w, spatial_scale,
                sampling_ratio, aligned);
}

template <decltype(ps_roi_align_backward_cpu)* kernel>
at::Tensor ps_roi_align_backward(const at::Tensor& grad_output,
                                 const at::Tensor& rois, int64_t batch,
                                 int64_t channels, int64_t height,
                                 int64_t width, int64_t pooled_h,
                                 int64_t pooled_w, double spatial_scale,
                                 int64_t sampling_ratio, bool aligned) {
  check_ps_roi_grad(grad_output, rois, channels, pooled_h, pooled_w,
                    "ps_roi_align");
  return kernel(grad_output, rois, batch, channels, height, width, pooled_h,
                pooled_w, spatial_scale, sampling_ratio, aligned);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rfcn_mm, m) {
  m.def(
      "ps_roi_align(Tensor input, Tensor rois, int pooled_h, int pooled_w, "
      "float spatial_scale, int sampling_ratio, bool aligned) -> Tensor");
  m.def(
      "_ps_roi_align_backward(Tensor grad_output, Tensor rois, int batch, "
      "int channels, int height, int width, int pooled_h, int pooled_w, "
      "float spatial_scale, int sampling_ratio, bool aligned) -> Tensor");
}

TORCH_LIBRARY_IMPL(rfcn_mm, CPU, m) {
  m.impl("ps_roi_align", &ps_roi_align_forward<ps_roi_align_forward_cpu>);
  m.impl("_ps_roi_align_backward",
         &ps_roi_align_backward<ps_roi_align_backward_cpu>);
}

#ifdef RFCN_WITH_CUDA
TORCH_LIBRARY_IMPL(rfcn_mm, CUDA, m) {
  m.impl("ps_roi_align", &ps_roi_align_forward<ps_roi_align_forward_cuda>);
  m.impl("_ps_roi_align_backward",
         &ps_roi_align_backward<ps_roi_align_backward_cuda>);
}
#endif
