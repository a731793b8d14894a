// Dispatch and argument checks of sorted_nms.
#include "pytorch_cpp_helper.hpp"

at::Tensor sorted_nms_cpu(const at::Tensor& boxes, const at::Tensor& valid,
                          double iou_threshold, int64_t max_num);
#ifdef RFCN_WITH_CUDA
at::Tensor sorted_nms_cuda(const at::Tensor& boxes, const at::Tensor& valid,
                           double iou_threshold, int64_t max_num);
#endif

constexpr int64_t kMaxCudaBoxes = 65536;

at::Tensor sorted_nms(const at::Tensor& boxes, const at::Tensor& valid,
                      double iou_threshold, int64_t max_num) {
  CHECK_DEFINED(boxes);
  CHECK_DEFINED(valid);
  TORCH_CHECK(boxes.dim() == 3 && boxes.size(2) == 4,
              "sorted_nms: boxes must be shaped (N, M, 4), got shape ",
              boxes.sizes());
  TORCH_CHECK(boxes.scalar_type() == at::kFloat,
              "sorted_nms: boxes must be float32, got ", boxes.scalar_type());
  TORCH_CHECK(valid.dim() == 2 && valid.size(0) == boxes.size(0) &&
                  valid.size(1) == boxes.size(1),
              "sorted_nms: valid must be shaped (N, M) = (", boxes.size(0),
              ", ", boxes.size(1), "), got shape ", valid.sizes());
  TORCH_CHECK(valid.scalar_type() == at::kBool,
              "sorted_nms: valid must be a bool tensor, got ",
              valid.scalar_type());
  TORCH_CHECK(boxes.device() == valid.device(),
              "sorted_nms: boxes and valid must be on the same device, got ",
              boxes.device(), " and ", valid.device());
  TORCH_CHECK(max_num > 0, "sorted_nms: max_num must be positive, got ",
              max_num);
  TORCH_CHECK(boxes.size(1) < (int64_t(1) << 31),
              "sorted_nms: fewer than 2^31 boxes per image, got ",
              boxes.size(1));
  if (boxes.is_cuda()) {
    TORCH_CHECK(boxes.size(1) <= kMaxCudaBoxes, "sorted_nms: at most ",
                kMaxCudaBoxes, " boxes per image on CUDA (the overlap mask "
                "takes M * M / 8 bytes per image), got ", boxes.size(1));
#ifdef RFCN_WITH_CUDA
    return sorted_nms_cuda(boxes, valid, iou_threshold, max_num);
#else
    TORCH_CHECK(false, "sorted_nms: rfcn_mm was built without CUDA; rebuild "
                       "with FORCE_CUDA=1 to run on ",
                boxes.device());
#endif
  }
  TORCH_CHECK(boxes.is_cpu(), "sorted_nms: unsupported device ",
              boxes.device());
  return sorted_nms_cpu(boxes, valid, iou_threshold, max_num);
}
