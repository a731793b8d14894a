// Box overlap test shared by the CPU and CUDA kernels of sorted_nms.
#ifndef RFCN_NMS_UTILS_H
#define RFCN_NMS_UTILS_H

#include "ps_roi_utils.h"  // RFCN_HOST_DEVICE

namespace rfcn {

// Whether IoU(a, b) > threshold for (x1, y1, x2, y2) boxes, in the
// division-free form of mmcv's CUDA NMS (offset 0), so that both devices
// and mmcv agree bit for bit.
RFCN_HOST_DEVICE bool iou_above(const float* a, const float* b,
                                float threshold) {
  const float left = fmaxf(a[0], b[0]), right = fminf(a[2], b[2]);
  const float top = fmaxf(a[1], b[1]), bottom = fminf(a[3], b[3]);
  const float width = fmaxf(right - left, 0.f);
  const float height = fmaxf(bottom - top, 0.f);
  const float inter = width * height;
  const float area_a = (a[2] - a[0]) * (a[3] - a[1]);
  const float area_b = (b[2] - b[0]) * (b[3] - b[1]);
  return inter > threshold * (area_a + area_b - inter);
}

}  // namespace rfcn

#endif  // RFCN_NMS_UTILS_H
