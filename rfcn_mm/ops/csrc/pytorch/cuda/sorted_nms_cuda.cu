// Launcher of the CUDA sorted_nms kernels.
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <algorithm>

#include "pytorch_cpp_helper.hpp"
#include "sorted_nms_cuda_kernel.cuh"

at::Tensor sorted_nms_cuda(const at::Tensor& boxes_, const at::Tensor& valid_,
                           double iou_threshold, int64_t max_num) {
  c10::cuda::CUDAGuard device_guard(boxes_.device());
  const auto boxes = boxes_.contiguous();
  const auto valid = valid_.contiguous();
  const int64_t batch = boxes.size(0);
  const int num_boxes = static_cast<int>(boxes.size(1));
  auto keep = at::empty({batch, max_num}, boxes.options().dtype(at::kLong));
  if (keep.numel() == 0) return keep;
  if (num_boxes == 0) return keep.fill_(-1);
  const int col_blocks = (num_boxes + rfcn::kNmsTile - 1) / rfcn::kNmsTile;
  auto mask = at::empty({batch, num_boxes, col_blocks},
                        boxes.options().dtype(at::kLong));
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const dim3 grid(col_blocks, col_blocks, batch);
  sorted_nms_mask_cuda_kernel<<<grid, rfcn::kNmsTile, 0, stream>>>(
      boxes.data_ptr<float>(), valid.data_ptr<bool>(),
      reinterpret_cast<unsigned long long*>(mask.data_ptr<int64_t>()),
      num_boxes, col_blocks, static_cast<float>(iou_threshold));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  // a thread per word of a mask row (up to 256), and one per box of a word
  const int threads =
      std::max(rfcn::kNmsTile, std::min(256, (col_blocks + 31) / 32 * 32));
  sorted_nms_gather_cuda_kernel<<<batch, threads,
                                  col_blocks * sizeof(unsigned long long),
                                  stream>>>(
      reinterpret_cast<const unsigned long long*>(mask.data_ptr<int64_t>()),
      valid.data_ptr<bool>(), keep.data_ptr<int64_t>(), num_boxes,
      col_blocks, static_cast<int>(max_num));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return keep;
}
