// Launch configuration shared by the rfcn_mm CUDA launchers: grid-stride
// kernels over one element per thread.
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
}  // namespace rfcn

#endif  // RFCN_LAUNCH_UTILS_CUH
