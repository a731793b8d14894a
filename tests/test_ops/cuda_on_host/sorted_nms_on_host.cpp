// rfcn_mm's CUDA sorted_nms kernels run on the host (cuda_on_host.h).
// stdin: cases, each int32 N, M, max_num, float32 threshold, N*M*4 float32
// boxes, N*M bytes valid; stdout: each case's N*max_num int64 keep.
#include <cstdint>
#include <cstdio>
#include <memory>

#include "cuda_on_host.h"
#include "sorted_nms_cuda_kernel.cuh"  // as host_cuda.host_source makes it

template <typename T>
static bool read(T* dst, size_t count) {
  return fread(dst, sizeof(T), count, stdin) == count;
}

int main() {
  int32_t head[3];
  float threshold;
  while (read(head, 3) && read(&threshold, 1)) {
    const int n = head[0], m = head[1], max_num = head[2];
    std::vector<float> boxes(size_t(n) * m * 4);
    std::vector<unsigned char> bytes(size_t(n) * m);
    if (!read(boxes.data(), boxes.size()) || !read(bytes.data(), bytes.size()))
      return 2;
    std::unique_ptr<bool[]> valid(new bool[bytes.size() + 1]);
    for (size_t i = 0; i < bytes.size(); ++i) valid[i] = bytes[i] != 0;
    const int col_blocks = (m + rfcn::kNmsTile - 1) / rfcn::kNmsTile;
    if (col_blocks * sizeof(uint64_t) > kHostDynamicSmem) return 3;
    // poisoned: the gather must read only mask words the mask kernel wrote
    std::vector<unsigned long long> mask(size_t(n) * m * col_blocks + 1,
                                         0xA5A5A5A5A5A5A5A5ULL);
    std::vector<int64_t> keep(size_t(n) * max_num, -7);
    if (m > 0) {
      launch({unsigned(col_blocks), unsigned(col_blocks), unsigned(n)},
             rfcn::kNmsTile, [&] {
               sorted_nms_mask_cuda_kernel(boxes.data(), valid.get(),
                                           mask.data(), m, col_blocks,
                                           threshold);
             });
      // the launcher's block size (sorted_nms_cuda.cu)
      const int threads =
          max(rfcn::kNmsTile, min(256, (col_blocks + 31) / 32 * 32));
      launch({unsigned(n), 1, 1}, threads, [&] {
        sorted_nms_gather_cuda_kernel(mask.data(), valid.get(), keep.data(),
                                      m, col_blocks, max_num);
      });
    }
    fwrite(keep.data(), sizeof(int64_t), keep.size(), stdout);
  }
  return 0;
}
