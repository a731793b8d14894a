// CPU kernel of sorted_nms: the textbook greedy loop over boxes in score
// order, one image per task, with the overlap test of the CUDA kernels.
#include <ATen/Parallel.h>
#include <ATen/ops/full.h>

#include <vector>

#include "nms_utils.h"
#include "pytorch_cpp_helper.hpp"

at::Tensor sorted_nms_cpu(const at::Tensor& boxes_, const at::Tensor& valid_,
                          double iou_threshold, int64_t max_num) {
  const auto boxes = boxes_.contiguous();
  const auto valid = valid_.contiguous();
  const int64_t batch = boxes.size(0), num_boxes = boxes.size(1);
  auto keep = at::full({batch, max_num}, -1, boxes.options().dtype(at::kLong));
  if (keep.numel() == 0 || num_boxes == 0) return keep;
  const float* box_data = boxes.data_ptr<float>();
  const bool* valid_data = valid.data_ptr<bool>();
  int64_t* keep_data = keep.data_ptr<int64_t>();
  const float threshold = static_cast<float>(iou_threshold);
  at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
    std::vector<char> removed(num_boxes);
    for (int64_t n = begin; n < end; ++n) {
      const float* b = box_data + n * num_boxes * 4;
      const bool* v = valid_data + n * num_boxes;
      int64_t* out = keep_data + n * max_num;
      for (int64_t i = 0; i < num_boxes; ++i) removed[i] = !v[i];
      int64_t count = 0;
      for (int64_t i = 0; i < num_boxes && count < max_num; ++i) {
        if (removed[i]) continue;
        out[count++] = i;
        for (int64_t j = i + 1; j < num_boxes; ++j) {
          if (!removed[j] && rfcn::iou_above(b + i * 4, b + j * 4, threshold))
            removed[j] = 1;
        }
      }
    }
  });
  return keep;
}
