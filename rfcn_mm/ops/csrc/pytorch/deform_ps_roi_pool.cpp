// Schemas, argument checks and per-device registration of deformable
// position-sensitive RoI pooling (rfcn_mm::deform_ps_roi_pool and its
// backward).
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <cmath>

#include "pytorch_cpp_helper.hpp"

void check_ps_roi_args(const at::Tensor& input, const at::Tensor& rois,
                       int64_t pooled_h, int64_t pooled_w,
                       double spatial_scale, const char* op);
void check_ps_roi_channels(const at::Tensor& input, int64_t pooled_h,
                           int64_t pooled_w, const char* op);

at::Tensor deform_ps_roi_pool_forward_cpu(
    const at::Tensor& input, const at::Tensor& rois, const at::Tensor& offset,
    int64_t pooled_h, int64_t pooled_w, double spatial_scale, int64_t part_h,
    int64_t part_w, int64_t sample_per_part, double trans_std, bool legacy);
std::tuple<at::Tensor, at::Tensor> deform_ps_roi_pool_backward_cpu(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& rois, const at::Tensor& offset, int64_t pooled_h,
    int64_t pooled_w, double spatial_scale, int64_t part_h, int64_t part_w,
    int64_t sample_per_part, double trans_std, bool legacy);
#ifdef RFCN_WITH_CUDA
at::Tensor deform_ps_roi_pool_forward_cuda(
    const at::Tensor& input, const at::Tensor& rois, const at::Tensor& offset,
    int64_t pooled_h, int64_t pooled_w, double spatial_scale, int64_t part_h,
    int64_t part_w, int64_t sample_per_part, double trans_std, bool legacy);
std::tuple<at::Tensor, at::Tensor> deform_ps_roi_pool_backward_cuda(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& rois, const at::Tensor& offset, int64_t pooled_h,
    int64_t pooled_w, double spatial_scale, int64_t part_h, int64_t part_w,
    int64_t sample_per_part, double trans_std, bool legacy);
#endif

namespace {

constexpr const char* kOp = "deform_ps_roi_pool";

// The messages are those of rfcn_mm/ops/deform_ps_roi_pool.py
// (check_deform_args), which the fake kernels raise too.
at::Tensor checked_offset(const at::Tensor& input, const at::Tensor& rois,
                          const c10::optional<at::Tensor>& offset,
                          int64_t pooled_h, int64_t pooled_w,
                          double spatial_scale, int64_t part_h,
                          int64_t part_w, int64_t sample_per_part,
                          double trans_std) {
  check_ps_roi_args(input, rois, pooled_h, pooled_w, spatial_scale, kOp);
  check_ps_roi_channels(input, pooled_h, pooled_w, kOp);
  TORCH_CHECK_VALUE(part_h > 0 && part_w > 0, kOp,
                    ": part_size must be positive, got (", part_h, ", ",
                    part_w, ")");
  TORCH_CHECK_VALUE(sample_per_part > 0, kOp,
                    ": sample_per_part must be positive, got ",
                    sample_per_part);
  TORCH_CHECK_VALUE(sample_per_part <= kMaxSamples, kOp,
                    ": sample_per_part must be at most ", kMaxSamples, " (",
                    kMaxSamples, " x ", kMaxSamples,
                    " samples per bin), got ", sample_per_part);
  TORCH_CHECK_VALUE(std::isfinite(trans_std), kOp,
                    ": trans_std must be finite, got ", trans_std);
  if (!offset.has_value() || !offset->defined())
    return at::empty({0}, input.options());
  const at::Tensor& off = *offset;
  const int64_t channels_out = input.size(1) / (pooled_h * pooled_w);
  TORCH_CHECK_VALUE(off.dim() == 4 && off.size(0) == rois.size(0) &&
                        off.size(1) % 2 == 0 && off.size(1) > 0 &&
                        off.size(2) == part_h && off.size(3) == part_w,
                    kOp, ": offset must be shaped (R, 2 * groups, part_h, "
                    "part_w) = (",
                    rois.size(0), ", 2 * groups, ", part_h, ", ", part_w,
                    "), got shape ", off.sizes());
  TORCH_CHECK_VALUE(channels_out % (off.size(1) / 2) == 0, kOp,
                    ": offset groups (", off.size(1) / 2,
                    ") must divide the output channels (", channels_out, ")");
  TORCH_CHECK_VALUE(off.device() == input.device(), kOp,
                    ": input and offset must be on the same device, got ",
                    input.device(), " and ", off.device());
  TORCH_CHECK_TYPE(off.scalar_type() == input.scalar_type(), kOp,
                   ": input and offset must have the same dtype, got ",
                   input.scalar_type(), " and ", off.scalar_type());
  return off;
}

template <decltype(deform_ps_roi_pool_forward_cpu)* kernel>
at::Tensor forward(const at::Tensor& input, const at::Tensor& rois,
                   const c10::optional<at::Tensor>& offset, int64_t pooled_h,
                   int64_t pooled_w, double spatial_scale, int64_t part_h,
                   int64_t part_w, int64_t sample_per_part, double trans_std,
                   bool legacy) {
  const auto off =
      checked_offset(input, rois, offset, pooled_h, pooled_w, spatial_scale,
                     part_h, part_w, sample_per_part, trans_std);
  return kernel(input, rois, off, pooled_h, pooled_w, spatial_scale, part_h,
                part_w, sample_per_part, trans_std, legacy);
}

template <decltype(deform_ps_roi_pool_backward_cpu)* kernel>
std::tuple<at::Tensor, at::Tensor> backward(
    const at::Tensor& grad_output, const at::Tensor& input,
    const at::Tensor& rois, const c10::optional<at::Tensor>& offset,
    int64_t pooled_h, int64_t pooled_w, double spatial_scale, int64_t part_h,
    int64_t part_w, int64_t sample_per_part, double trans_std, bool legacy) {
  const auto off =
      checked_offset(input, rois, offset, pooled_h, pooled_w, spatial_scale,
                     part_h, part_w, sample_per_part, trans_std);
  TORCH_CHECK_VALUE(
      grad_output.dim() == 4 && grad_output.size(0) == rois.size(0) &&
          grad_output.size(1) * pooled_h * pooled_w == input.size(1) &&
          grad_output.size(2) == pooled_h && grad_output.size(3) == pooled_w,
      kOp, ": grad_output shape ", grad_output.sizes(),
      " does not match the forward pass");
  return kernel(grad_output, input, rois, off, pooled_h, pooled_w,
                spatial_scale, part_h, part_w, sample_per_part, trans_std,
                legacy);
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(rfcn_mm, m) {
  m.def(
      "deform_ps_roi_pool(Tensor input, Tensor rois, Tensor? offset, "
      "int pooled_h, int pooled_w, float spatial_scale, int part_h, "
      "int part_w, int sample_per_part, float trans_std, bool legacy) "
      "-> Tensor");
  m.def(
      "_deform_ps_roi_pool_backward(Tensor grad_output, Tensor input, "
      "Tensor rois, Tensor? offset, int pooled_h, int pooled_w, "
      "float spatial_scale, int part_h, int part_w, int sample_per_part, "
      "float trans_std, bool legacy) -> (Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(rfcn_mm, CPU, m) {
  m.impl("deform_ps_roi_pool", &forward<deform_ps_roi_pool_forward_cpu>);
  m.impl("_deform_ps_roi_pool_backward",
         &backward<deform_ps_roi_pool_backward_cpu>);
}

#ifdef RFCN_WITH_CUDA
TORCH_LIBRARY_IMPL(rfcn_mm, CUDA, m) {
  m.impl("deform_ps_roi_pool", &forward<deform_ps_roi_pool_forward_cuda>);
  m.impl("_deform_ps_roi_pool_backward",
         &backward<deform_ps_roi_pool_backward_cuda>);
}
#endif
