// Launch configuration shared by the rfcn_mm CUDA launchers: grid-stride
// kernels over one element per thread, and when to use the plane kernels.
#ifndef RFCN_LAUNCH_UTILS_CUH
#define RFCN_LAUNCH_UTILS_CUH

#include <algorithm>
#include <cstdint>

namespace rfcn {
constexpr int kThreadsPerBlock = 256;
inline int num_blocks(int64_t n) {
  return static_cast<int>(std::min<int64_t>(
      (n + kThreadsPerBlock - 1) / kThreadsPerBlock, int64_t(1) << 20));
}

// The "plane" kernels (pooling forward, both backwards) run one block per
// (image, input channel), holding that plane (a summed-area table or a
// gradient) in shared memory while every RoI of the batch is visited: they
// need the plane to fit in the default 48 KB of dynamic shared memory, and
// lose to the one-thread-per-output kernels once images x RoIs grow large.
constexpr int64_t kPlaneSmemLimit = 48 * 1024;
constexpr int64_t kPlaneMaxBatchRois = 16384;
inline bool use_plane_kernel(int64_t plane_bytes, int64_t batch,
                             int64_t num_rois) {
  return plane_bytes <= kPlaneSmemLimit &&
         batch * num_rois <= kPlaneMaxBatchRois;
}
}  // namespace rfcn

#endif  // RFCN_LAUNCH_UTILS_CUH
