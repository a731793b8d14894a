// Schema, argument checks and per-device registration of
// rfcn_mm::sorted_nms.
#include <torch/library.h>

#include "pytorch_cpp_helper.hpp"

at::Tensor sorted_nms_cpu(const at::Tensor& boxes, const at::Tensor& valid,
                          double iou_threshold, int64_t max_num);
#ifdef RFCN_WITH_CUDA
at::Tensor sorted_nms_cuda(const at::Tensor& boxes, const at::Tensor& valid,
                           double iou_threshold, int64_t max_num);
#endif

namespace {

constexpr int64_t kMaxCudaBoxes = 65536;

// The messages are those of rfcn_mm/ops/sorted_nms.py, which the fake
// kernel raises too.
void check_sorted_nms_args(const at::Tensor& boxes, const at::Tensor& valid,
                           double iou_threshold, int64_t max_num) {
  TORCH_CHECK_VALUE(boxes.dim() == 3 && boxes.size(2) == 4,
                    "sorted_nms: boxes must be shaped (N, M, 4), got shape ",
                    boxes.sizes());
  TORCH_CHECK_TYPE(boxes.scalar_type() == at::kFloat,
                   "sorted_nms: boxes must be float32, got ",
                   boxes.scalar_type());
  TORCH_CHECK_VALUE(valid.dim() == 2 && valid.size(0) == boxes.size(0) &&
                        valid.size(1) == boxes.size(1),
                    "sorted_nms: valid must be shaped (N, M) = (",
                    boxes.size(0), ", ", boxes.size(1), "), got shape ",
                    valid.sizes());
  TORCH_CHECK_TYPE(valid.scalar_type() == at::kBool,
                   "sorted_nms: valid must be a bool tensor, got ",
                   valid.scalar_type());
  TORCH_CHECK_VALUE(
      boxes.device() == valid.device(),
      "sorted_nms: boxes and valid must be on the same device, got ",
      boxes.device(), " and ", valid.device());
  TORCH_CHECK_VALUE(max_num > 0,
                    "sorted_nms: max_num must be a positive int, got ",
                    max_num);
  TORCH_CHECK_VALUE(iou_threshold >= 0 && iou_threshold <= 1,
                    "sorted_nms: iou_threshold must be a number in [0, 1], "
                    "got ",
                    iou_threshold);
  TORCH_CHECK_VALUE(boxes.size(1) < (int64_t(1) << 31),
                    "sorted_nms: fewer than 2^31 boxes per image, got ",
                    boxes.size(1));
}

at::Tensor sorted_nms_cpu_op(const at::Tensor& boxes, const at::Tensor& valid,
                             double iou_threshold, int64_t max_num) {
  check_sorted_nms_args(boxes, valid, iou_threshold, max_num);
  return sorted_nms_cpu(boxes, valid, iou_threshold, max_num);
}

#ifdef RFCN_WITH_CUDA
at::Tensor sorted_nms_cuda_op(const at::Tensor& boxes,
                              const at::Tensor& valid, double iou_threshold,
                              int64_t max_num) {
  check_sorted_nms_args(boxes, valid, iou_threshold, max_num);
  TORCH_CHECK_VALUE(boxes.size(1) <= kMaxCudaBoxes, "sorted_nms: at most ",
                    kMaxCudaBoxes,
                    " boxes per image on CUDA (the overlap mask takes M * M "
                    "/ 8 bytes per image), got ",
                    boxes.size(1));
  return sorted_nms_cuda(boxes, valid, iou_threshold, max_num);
}
#endif

}  // namespace

TORCH_LIBRARY_FRAGMENT(rfcn_mm, m) {
  m.def(
      "sorted_nms(Tensor boxes, Tensor valid, float iou_threshold, "
      "int max_num) -> Tensor");
}

TORCH_LIBRARY_IMPL(rfcn_mm, CPU, m) { m.impl("sorted_nms", &sorted_nms_cpu_op); }

#ifdef RFCN_WITH_CUDA
TORCH_LIBRARY_IMPL(rfcn_mm, CUDA, m) {
  m.impl("sorted_nms", &sorted_nms_cuda_op);
}
#endif
