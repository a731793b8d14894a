// Just enough of CUDA to run a kernel's source on the host, for tests on
// machines without a GPU: every thread of a block is a std::thread,
// __syncthreads is a std::barrier, blocks run one after another. Block-wide
// arrays are made static and dynamic shared memory points into
// host_dynamic_smem by host_cuda.host_source, since one block runs at a
// time; atomics are std::atomic_ref.
#ifndef RFCN_TESTS_CUDA_ON_HOST_H
#define RFCN_TESTS_CUDA_ON_HOST_H

#include <algorithm>
#include <atomic>
#include <barrier>
#include <functional>
#include <thread>
#include <vector>

struct HostDim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local HostDim3 threadIdx, blockIdx;
inline HostDim3 blockDim, gridDim;
inline std::barrier<>* host_block_barrier = nullptr;
constexpr size_t kHostDynamicSmem = 1 << 20;
alignas(16) inline unsigned char host_dynamic_smem[kHostDynamicSmem];

inline void __syncthreads() { host_block_barrier->arrive_and_wait(); }
inline int __ffsll(long long v) { return __builtin_ffsll(v); }
template <typename T>
inline T gpuAtomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}
using std::max;
using std::min;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

// Runs kernel() for every thread of every block of grid.
inline void launch(HostDim3 grid, unsigned threads,
                   const std::function<void()>& kernel) {
  gridDim = grid;
  blockDim = {threads, 1, 1};
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        std::barrier<> barrier(threads);
        host_block_barrier = &barrier;
        std::vector<std::thread> block;
        for (unsigned t = 0; t < threads; ++t)
          block.emplace_back([&, t] {
            threadIdx = {t, 0, 0};
            blockIdx = {x, y, z};
            kernel();
          });
        for (auto& thread : block) thread.join();
      }
}

#endif  // RFCN_TESTS_CUDA_ON_HOST_H
