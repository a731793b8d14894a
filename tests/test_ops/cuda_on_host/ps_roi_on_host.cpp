// rfcn_mm's CUDA PS RoI pooling and align kernels run on the host
// (cuda_on_host.h), launched as the launchers in
// rfcn_mm/ops/csrc/pytorch/cuda/ launch them, on the path asked for.
// stdin: cases, each int32 op (0 pool, 1 align), backward, plane, float64,
// batch, channels, height, width, pooled_h, pooled_w, num_rois,
// sampling_ratio, aligned (pooling: 0 = legacy coordinates); float64
// spatial_scale; then in the case's
// dtype the input (forward) or output gradient (backward) and the
// (num_rois, 5) RoIs. stdout: each case's output or input gradient.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "cuda_on_host.h"
#include "launch_utils.cuh"
#include "ps_roi_align_cuda_kernel.cuh"  // as host_cuda.host_source makes it
#include "ps_roi_pool_cuda_kernel.cuh"

struct Case {
  int op, backward, plane, f64, batch, channels, height, width, pooled_h,
      pooled_w, num_rois, sampling_ratio, aligned;
  double spatial_scale;
};

template <typename T>
static bool read(T* dst, size_t count) {
  return fread(dst, sizeof(T), count, stdin) == count;
}

static HostDim3 grid1(int64_t blocks) { return {unsigned(blocks), 1, 1}; }

template <typename T>
static int run(const Case& c) {
  const int bins = c.pooled_h * c.pooled_w, cout = c.channels / bins;
  const int64_t in_size = int64_t(c.batch) * c.channels * c.height * c.width;
  const int64_t out_size = int64_t(c.num_rois) * cout * bins;
  std::vector<T> x(c.backward ? out_size : in_size), rois(c.num_rois * 5);
  if (!read(x.data(), x.size()) || !read(rois.data(), rois.size())) return 2;
  const T scale = static_cast<T>(c.spatial_scale);
  const bool legacy = c.aligned == 0;  // pooling's coordinate mode
  const int threads = rfcn::kThreadsPerBlock;
  std::vector<T> y(c.backward ? in_size : out_size);
  const int64_t n = out_size;
  if (c.op == 0 && !c.backward && c.plane) {
    const size_t smem = size_t(c.height + 1) *
                        ps_roi_pool_sat_stride(c.width) * sizeof(double);
    if (smem > kHostDynamicSmem) return 3;
    launch(grid1(int64_t(c.batch) * c.channels), threads, [&] {
      ps_roi_pool_forward_plane_cuda_kernel<T, T>(
          x.data(), rois.data(), y.data(), c.batch, c.num_rois, cout,
          c.height, c.width, c.pooled_h, c.pooled_w, scale, legacy);
    });
  } else if (c.op == 0 && !c.backward) {
    launch(grid1(rfcn::num_blocks(n)), threads, [&] {
      ps_roi_pool_forward_cuda_kernel<T, T>(
          n, x.data(), rois.data(), y.data(), c.batch, cout, c.height,
          c.width, c.pooled_h, c.pooled_w, scale, legacy);
    });
  } else if (c.op == 0 && c.plane) {
    const size_t smem =
        size_t(c.height) * ps_roi_pool_plane_stride(c.width) * sizeof(T);
    if (smem > kHostDynamicSmem) return 3;
    launch(grid1(int64_t(c.batch) * c.channels), threads, [&] {
      ps_roi_pool_backward_plane_cuda_kernel<T, T>(
          x.data(), rois.data(), y.data(), c.num_rois, cout, c.height,
          c.width, c.pooled_h, c.pooled_w, scale, legacy);
    });
  } else if (c.op == 0) {
    // difference array with an extra row and column, then two cumsums
    const int dh = c.height + 1, dw = c.width + 1;
    std::vector<T> diff(size_t(c.batch) * c.channels * dh * dw, T(0));
    launch(grid1(rfcn::num_blocks(n)), threads, [&] {
      ps_roi_pool_backward_cuda_kernel<T, T>(
          n, x.data(), rois.data(), diff.data(), c.batch, cout, c.height,
          c.width, c.pooled_h, c.pooled_w, scale, legacy);
    });
    for (int64_t p = 0; p < int64_t(c.batch) * c.channels; ++p) {
      T* d = diff.data() + p * dh * dw;
      for (int h = 1; h < dh; ++h)
        for (int w = 0; w < dw; ++w) d[h * dw + w] += d[(h - 1) * dw + w];
      for (int h = 0; h < dh; ++h)
        for (int w = 1; w < dw; ++w) d[h * dw + w] += d[h * dw + w - 1];
      for (int h = 0; h < c.height; ++h)
        for (int w = 0; w < c.width; ++w)
          y[(p * c.height + h) * c.width + w] = d[h * dw + w];
    }
  } else if (!c.backward) {
    launch(grid1(rfcn::num_blocks(n)), threads, [&] {
      ps_roi_align_forward_cuda_kernel<T, T>(
          n, x.data(), rois.data(), y.data(), c.batch, cout, c.height,
          c.width, c.pooled_h, c.pooled_w, scale, c.sampling_ratio,
          c.aligned != 0);
    });
  } else if (c.plane) {
    const size_t smem = size_t(c.height) * c.width * sizeof(T);
    if (smem > kHostDynamicSmem) return 3;
    launch(grid1(int64_t(c.batch) * c.channels), threads, [&] {
      ps_roi_align_backward_plane_cuda_kernel<T, T>(
          x.data(), rois.data(), y.data(), c.num_rois, cout, c.height,
          c.width, c.pooled_h, c.pooled_w, scale, c.sampling_ratio,
          c.aligned != 0);
    });
  } else {
    std::fill(y.begin(), y.end(), T(0));
    launch(grid1(rfcn::num_blocks(n)), threads, [&] {
      ps_roi_align_backward_cuda_kernel<T, T>(
          n, x.data(), rois.data(), y.data(), c.batch, cout, c.height,
          c.width, c.pooled_h, c.pooled_w, scale, c.sampling_ratio,
          c.aligned != 0);
    });
  }
  fwrite(y.data(), sizeof(T), y.size(), stdout);
  return 0;
}

int main() {
  int32_t h[13];
  Case c;
  while (read(h, 13) && read(&c.spatial_scale, 1)) {
    c = Case{h[0], h[1], h[2],  h[3],  h[4],  h[5],  h[6],
             h[7], h[8], h[9], h[10], h[11], h[12], c.spatial_scale};
    const int status = c.f64 ? run<double>(c) : run<float>(c);
    if (status != 0) return status;
  }
  return 0;
}
